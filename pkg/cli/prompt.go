package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// confirm asks before a change that cannot be taken back (a site
// deleted, a site's content replaced by a backup, a backup deleted). Only
// y or yes goes on; anything else, end of input or an interrupt changes
// nothing (exit 2).
//
// The answer is read from standard input whether it is a terminal or not:
// "echo n | aegir site delete X" means no, and so does a cron line or a
// script with nothing on its input. Only -y (--yes) asks nothing.
func (a *App) confirm(question string) error {
	if a.yes {
		return nil
	}
	fmt.Fprintf(a.IO.Err, "%s [y/N] ", question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(a.IO.In).ReadString('\n')
		answer <- line
	}()
	var line string
	msg := "not confirmed: nothing was changed"
	select {
	case line = <-answer:
		if line == "" {
			msg = "not confirmed (no answer on standard input): nothing was changed"
		}
	case <-a.ctx.Done():
		msg = "interrupted: nothing was changed"
	}
	// A terminal echoes the answer and its newline; a pipe does not.
	if !strings.HasSuffix(line, "\n") || !isTerminal(a.IO.In) {
		fmt.Fprintln(a.IO.Err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &Error{Code: ExitUsage, Err: errors.New(msg),
		Hint: "answer y to go on, or pass -y (--yes) to skip the question (scripts and cron lines: -y)"}
}

// isTerminal reports whether s (a reader or writer) is a terminal.
func isTerminal(s any) bool {
	f, ok := s.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
