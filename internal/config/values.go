package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads nginx's time syntax: "30", "30s", "500ms", "1m30s",
// "2h", "1d", "1w", "1M" (30 days), "1y". A bare number is seconds.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty time value")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid time value %q", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time value %q", s)
		}
		rest = rest[i:]
		unit := time.Second
		switch {
		case strings.HasPrefix(rest, "ms"):
			unit, rest = time.Millisecond, rest[2:]
		case rest == "":
		case rest[0] == 's':
			rest = rest[1:]
		case rest[0] == 'm':
			unit, rest = time.Minute, rest[1:]
		case rest[0] == 'h':
			unit, rest = time.Hour, rest[1:]
		case rest[0] == 'd':
			unit, rest = 24*time.Hour, rest[1:]
		case rest[0] == 'w':
			unit, rest = 7*24*time.Hour, rest[1:]
		case rest[0] == 'M':
			unit, rest = 30*24*time.Hour, rest[1:]
		case rest[0] == 'y':
			unit, rest = 365*24*time.Hour, rest[1:]
		default:
			return 0, fmt.Errorf("invalid time value %q", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// ParseSize reads nginx's size syntax: "1024", "8k", "1m", "1g" (either case).
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty size value")
	}
	mult := int64(1)
	num := s
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, num = 1<<10, s[:len(s)-1]
	case 'm', 'M':
		mult, num = 1<<20, s[:len(s)-1]
	case 'g', 'G':
		mult, num = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size value %q", s)
	}
	return n * mult, nil
}

// parseFlag reads "on" or "off".
func parseFlag(d *Directive) (bool, *Error) {
	switch strings.ToLower(d.Args[0]) {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errorf("invalid value %q in %q directive, it must be \"on\" or \"off\"", d.Args[0], d.Name)
}

func parseTime(d *Directive, i int) (time.Duration, *Error) {
	v, err := ParseDuration(d.Args[i])
	if err != nil {
		return 0, d.Errorf("%q directive invalid value %q", d.Name, d.Args[i])
	}
	return v, nil
}
