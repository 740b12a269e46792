package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// confirm asks the person at the terminal before a change that cannot be
// taken back (a site deleted, a site's content replaced by a backup, a
// backup deleted). Only y or yes goes on; anything else, end of input or
// an interrupt changes nothing (exit 2).
//
// Nobody is asked with -y (--yes), or when standard input or error is
// not a terminal: cron, CI and pipes have no one to answer (or to see the
// question), and a script that runs the command means it.
func (a *App) confirm(question string) error {
	if a.yes || !isTerminal(a.IO.In) || !isTerminal(a.IO.Err) {
		return nil
	}
	fmt.Fprintf(a.IO.Err, "%s [y/N] ", question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(a.IO.In).ReadString('\n')
		answer <- line
	}()
	var line string
	select {
	case line = <-answer:
	case <-a.ctx.Done():
		fmt.Fprintln(a.IO.Err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(a.IO.Err)
	}
	return &Error{Code: ExitUsage, Err: errors.New("not confirmed: nothing was changed"),
		Hint: "answer y to go on, or pass -y (--yes) to skip the question"}
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
