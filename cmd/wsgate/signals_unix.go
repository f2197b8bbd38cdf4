//go:build unix

package main

import "syscall"

// sigReopen is the signal that reopens the log files (nginx's USR1).
const sigReopen = syscall.SIGUSR1

// killProcess sends sig to the process pid ("wsgate -s").
func killProcess(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
