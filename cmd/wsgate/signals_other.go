//go:build !unix

package main

import (
	"errors"
	"syscall"
)

// sigReopen stands for nginx's USR1, which this system does not have: no
// process receives it, so log files are reopened only by a restart.
const sigReopen = syscall.Signal(10)

// killProcess cannot signal another process on this system.
func killProcess(pid int, sig syscall.Signal) error {
	return errors.New("\"wsgate -s\" needs Unix signals, which this system does not have")
}
