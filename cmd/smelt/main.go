// Command smelt turns raw web crawls into training-ready token shards and
// trains a language model on them. Each stage is a verb; run `smelt --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopGrace is how long a verb has, after SIGINT or SIGTERM, to stop on
// its own (its context is cancelled) before the process exits anyway.
// Every stage writes its files atomically and resumes from its last
// checkpoint, so an exit at any point is as safe as a kill -9.
// SMELT_STOP_GRACE (a duration) overrides it: tests set it long, so that
// a verb that stops does so by itself, whatever the machine's load.
const stopGrace = 10 * time.Second

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	got := make(chan os.Signal, 1)
	grace := stopGrace
	if d, err := time.ParseDuration(os.Getenv("SMELT_STOP_GRACE")); err == nil && d > 0 {
		grace = d
	}
	root := newRootCmd()
	hint := interruptHint(root, os.Args[1:])
	go func() {
		s := <-sig
		got <- s
		if rc := resumeCommand.Load(); rc != nil { // set by train: the exact command that resumes this run
			hint = "resume with: " + *rc
		}
		fmt.Fprintf(os.Stderr, "smelt: %v: stopping (again to stop at once); %s\n", s, hint)
		cancel()
		select {
		case s = <-sig:
		case <-time.After(grace):
			fmt.Fprintf(os.Stderr, "smelt: did not stop within %v; exiting (the last checkpoint stands)\n", grace)
		}
		os.Exit(signalExit(s))
	}()
	err := root.ExecuteContext(ctx)
	select {
	case s := <-got:
		// Interrupted: the status says so whatever the verb returned.
		if err != nil {
			fmt.Fprintln(os.Stderr, "smelt:", err)
		}
		os.Exit(signalExit(s))
	default:
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "smelt:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// signalExit is the shell's exit status for a process stopped by s:
// 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// exitError carries a specific process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
