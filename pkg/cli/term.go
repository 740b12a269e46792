package cli

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/aegir-project/aegir/pkg/cli/output"
)

// termWidth is the width tables printed to w must fit in: the terminal's
// columns when w is a terminal, else COLUMNS when it is set (a pager, a
// script that wants it), else 0: no limit, a pipe gets whole cells.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 0
}

// colorOn says whether what is written to w may be colored: w is a
// terminal that knows colors, and neither --no-color, no_color in the
// config nor NO_COLOR says otherwise.
func (a *App) colorOn(w io.Writer) bool {
	return !a.noColor && os.Getenv("TERM") != "dumb" && isTerminal(w)
}

// paint colors s for w when colorOn(w) says so.
func (a *App) paint(w io.Writer, color, s string) string {
	if !a.colorOn(w) {
		return s
	}
	return output.Colorize(color, s)
}
