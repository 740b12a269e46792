package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/fpm"
)

func init() {
	siteCommands = append(siteCommands, func(a *App) *cobra.Command { return newSiteLogsCmd(a, nil) })
}

// SiteLogsOptions are site logs': the site, which of its logs (none set:
// all it has), how many lines, and whether to follow them (Poll: how often
// to look for new lines then).
type SiteLogsOptions struct {
	*App
	Domain             string
	Access, Error, PHP bool
	Follow             bool
	Lines              int
	Poll               time.Duration
}

// maxLogLines bounds --lines.
const maxLogLines = 100000

func newSiteLogsCmd(a *App, runF func(*SiteLogsOptions) error) *cobra.Command {
	o := &SiteLogsOptions{App: a, Lines: 20, Poll: 500 * time.Millisecond}
	cmd := bind(&cobra.Command{
		Use:   "logs DOMAIN [--access|--error|--php] [--follow] [--lines N]",
		Short: "Print a site's own logs: its virtual host's access and error logs, its pool's PHP errors",
		Long: `Print the last lines of a site's logs, read on its web server (locally or
over SSH): its virtual host's access and error logs and, for an isolated site,
its php-fpm pool's PHP error log (docs/isolation.md). Without a choice, every
log the site has, each under a header; with one, its lines alone. --follow
keeps printing new lines until interrupted.`,
	}, o, runF, runSiteLogs, &o.Domain)
	f := cmd.Flags()
	f.BoolVar(&o.Access, "access", false, "the access log")
	f.BoolVar(&o.Error, "error", false, "the web server's error log of the site")
	f.BoolVar(&o.PHP, "php", false, "the PHP error log of the site's pool (isolated sites)")
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines until interrupted")
	f.IntVarP(&o.Lines, "lines", "n", 20, "how many of the last lines to print first")
	return cmd
}

func runSiteLogs(o *SiteLogsOptions) error {
	var kinds []string
	for _, k := range []struct {
		on   bool
		kind string
	}{{o.Access, fpm.LogAccess}, {o.Error, fpm.LogError}, {o.PHP, fpm.LogPHP}} {
		if k.on {
			kinds = append(kinds, k.kind)
		}
	}
	if len(kinds) > 1 {
		return invalid("--"+kinds[1], "", "cannot be given with --"+kinds[0]+": choose one log, or none for all")
	}
	if o.Lines < 0 || o.Lines > maxLogLines {
		return invalid("--lines", strconv.Itoa(o.Lines), fmt.Sprintf("must be from 0 to %d", maxLogLines))
	}
	st, v, err := o.site(o.Domain)
	if err != nil {
		return err
	}
	if o.PHP && v.Isolation != entities.IsolationSite {
		return &Error{Code: ExitUsage, Err: invalid("--php", "", "has no log for "+v.Domain+": it runs in its server's shared php-fpm pool"),
			Hint: "its PHP errors are in the shared pool's log; aegir site edit " + v.Domain + " --isolation site gives it a pool and log of its own"}
	}
	single := len(kinds) == 1
	if !single {
		kinds = []string{fpm.LogAccess, fpm.LogError}
		if v.Isolation == entities.IsolationSite {
			kinds = append(kinds, fpm.LogPHP)
		}
	}
	srv, err := st.GetServer(o.ctx, v.Server)
	if err != nil {
		return err
	}
	pool, err := o.newPool(st)
	if err != nil {
		return err
	}
	defer pool.Close()
	ex, err := pool.Connect(o.ctx, hosting.ServerRef(srv))
	if err != nil {
		return err
	}
	files := make([]string, len(kinds))
	for i, k := range kinds {
		files[i] = fpm.LogFile(o.cfg.GetString("php_fpm.runtime_dir"), v.Domain, k)
	}
	offsets := make([]int64, len(files))
	for i, f := range files {
		if !single {
			fmt.Fprintf(o.IO.Out, "==> %s: %s <==\n", kinds[i], f)
		}
		size, err := logSize(o.ctx, ex, f)
		if err != nil {
			return err
		}
		if size < 0 {
			o.warnf("%s has no %s log yet (%s on %s)", v.Domain, kinds[i], f, srv.Name)
			continue
		}
		offsets[i] = size
		if o.Lines > 0 {
			res, err := ex.Run(o.ctx, exec.Command{Name: "tail", Args: []string{"-n", strconv.Itoa(o.Lines), "--", f}})
			if err != nil {
				return fmt.Errorf("reading %s on %s: %w", f, srv.Name, err)
			}
			// What came after the size was read, --follow prints (a line
			// written in between may be printed twice, never lost).
			o.IO.Out.Write(res.Stdout)
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		select {
		case <-o.ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
		for i, f := range files {
			size, err := logSize(o.ctx, ex, f)
			if err != nil {
				if o.ctx.Err() != nil {
					return nil
				}
				return err
			}
			if size < offsets[i] {
				offsets[i] = 0 // rotated (copied and truncated)
			}
			if size <= offsets[i] {
				continue
			}
			res, err := ex.Run(o.ctx, exec.Command{Name: "tail", Args: []string{"-c", "+" + strconv.FormatInt(offsets[i]+1, 10), "--", f}})
			if err != nil {
				if o.ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("reading %s on %s: %w", f, srv.Name, err)
			}
			// Whole lines only: a line being written is printed once
			// it ends, at the next look.
			out := res.Stdout[:bytes.LastIndexByte(res.Stdout, '\n')+1]
			offsets[i] += int64(len(out))
			if single {
				o.IO.Out.Write(out)
				continue
			}
			for _, l := range splitLines(out) {
				fmt.Fprintf(o.IO.Out, "%s: %s\n", kinds[i], l)
			}
		}
	}
}

// logSize is the size of a log, -1 when it does not exist.
func logSize(ctx context.Context, ex exec.Executor, f string) (int64, error) {
	fi, err := ex.Stat(ctx, f)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s on %s: %w", f, ex.Host(), err)
	}
	return fi.Size(), nil
}

// splitLines are the lines of b, without their line ends.
func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}
