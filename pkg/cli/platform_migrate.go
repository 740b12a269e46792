package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// PlatformMigrateOptions are platform migrate's: the old and the new
// platform, the sites, how the waves go, and what to do instead of
// migrating (the plan, the progress, only queue it).
type PlatformMigrateOptions struct {
	*App
	Old, New                string
	Sites                   []string
	Canary, Wave, PerServer int
	MaxFailures             string
	DryRun, Status, Queue   bool
}

func newPlatformMigrateCmd(a *App, runF func(*PlatformMigrateOptions) error) *cobra.Command {
	o := &PlatformMigrateOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "migrate OLD NEW [--sites D,...] [--canary N] [--wave N] [--per-server N] [--max-failures N|P%] [--dry-run] [--status]",
		Short: "Move the sites of a platform to another one in waves, each health-checked, stopping on failures",
		Long: `Move the sites of platform OLD (or those given with --sites) to platform NEW:
one parent task with a site migrate task per site. The first --canary sites
go alone, then waves of --wave sites, with at most --per-server moves at once
on any one web or database server. Each site is moved as site migrate moves
it, and before its old copy is removed it must pass its health gate on NEW:
the health check of a verify (its database login, php-fpm, its answer) and
its front page's title as it was before the move. A site that fails is
rolled back and keeps working on OLD.

Once more sites failed than --max-failures allows (a number, or a percentage
of the sites; default 0), or a canary site failed, no new site starts and the
task ends in error, listing the failed sites. Run the same command again once
they are fixed: it goes on with the sites left on OLD.

--status shows how far the last platform migrate from OLD to NEW got (also
while it runs, and after the master was killed); aegir task show ID shows
the same for any of them. --dry-run prints the waves and what each site's move would change, and changes nothing.`,
	}, o, runF, runPlatformMigrate, &o.Old, &o.New)
	f := cmd.Flags()
	listFlag(f, &o.Sites, "sites", "only these sites of OLD, in this order (default: all of them, by domain)")
	intFlag(f, &o.Canary, "canary", hosting.DefaultCanary, "how many sites go first, alone in their wave (0: none)")
	intFlag(f, &o.Wave, "wave", hosting.DefaultWave, "how many sites a wave has after the canary")
	intFlag(f, &o.PerServer, "per-server", hosting.DefaultPerServer, "at most this many moves at once on one web or database server")
	f.StringVar(&o.MaxFailures, "max-failures", "0", "how many sites may fail before no new site starts: N, or P% of the sites")
	f.BoolVar(&o.DryRun, "dry-run", false, "print the waves and what each site's move would change (files, virtual hosts, databases, users, pools); change nothing")
	f.BoolVar(&o.Status, "status", false, "show how far the last platform migrate from OLD to NEW got: done, failed, left")
	f.BoolVar(&o.Queue, "queue", false, "only queue the task; print its id")
	return cmd
}

func runPlatformMigrate(o *PlatformMigrateOptions) error {
	if err := validNames("OLD", o.Old, "NEW", o.New); err != nil {
		return err
	}
	if o.Old == o.New {
		return invalid("NEW", o.New, "is OLD itself: give the platform to move the sites to")
	}
	switch {
	case o.Canary < 0:
		return invalid("--canary", strconv.Itoa(o.Canary), "must be 0 (no canary) or more")
	case o.Wave < 1:
		return invalid("--wave", strconv.Itoa(o.Wave), "must be 1 or more")
	case o.PerServer < 1:
		return invalid("--per-server", strconv.Itoa(o.PerServer), "must be 1 or more")
	}
	if _, err := hosting.AllowedFailures(o.MaxFailures, 0); err != nil {
		return invalid("--max-failures", o.MaxFailures, err.Error())
	}
	if o.Status && (o.DryRun || o.Queue) {
		return invalid("--status", "", "only shows progress: give it without --dry-run and --queue")
	}
	st, old, err := lookup(o.App, o.Old, (*store.Store).GetPlatform)
	if err != nil {
		return err
	}
	to, err := st.GetPlatform(o.ctx, o.New)
	if err != nil {
		return err
	}
	if o.Status {
		return o.showMigrateStatus(st, old, to)
	}
	if err := store.OpenForSites(to); err != nil {
		return err
	}
	if old.Type != "" && to.Type != "" && old.Type != to.Type {
		return invalid("NEW", to.Name, "is a "+to.Type+" platform; the sites of "+old.Name+" are "+old.Type+" sites")
	}
	sites, err := o.migrateSites(st, old)
	if err != nil {
		return err
	}
	set := hosting.MigrateSettings{To: to.Name, Sites: sites, Canary: o.Canary, Wave: o.Wave, PerServer: o.PerServer, MaxFailures: strings.TrimSpace(o.MaxFailures)}
	if set.MaxFailures == "0" {
		set.MaxFailures = ""
	}
	if o.DryRun {
		return o.printMigratePlan(old, set)
	}
	if len(sites) == 0 {
		o.infof("platform %s has no sites left to move to %s", old.Name, to.Name)
		return nil
	}
	t, err := st.QueuePlatformTask(o.ctx, old, entities.TaskPlatformMigrate, set.Options())
	if err != nil {
		return err
	}
	if o.Queue {
		return o.printQueued(t)
	}
	done, err := o.runMigrate(t)
	if err != nil {
		return err
	}
	if err := taskExit(done); err != nil {
		return err
	}
	if !o.plainTable() {
		p, err := hosting.MigrateProgressOf(o.ctx, st, done)
		if err != nil {
			return err
		}
		o.taskDone(done, false)
		return o.print(p)
	}
	o.taskDone(done, true)
	return nil
}

// migrateSites are the sites to move, in order: those given with --sites
// (each must be a site of old), else every site of old by domain, less
// those not installed or disabled (with a warning). Isolated sites move as
// the others do: the move carries their user and pool.
func (o *PlatformMigrateOptions) migrateSites(st *store.Store, old *entities.Platform) ([]string, error) {
	var list []*entities.Site
	if len(o.Sites) > 0 {
		seen := map[string]bool{}
		for _, arg := range o.Sites {
			d, err := siteName("--sites", arg)
			if err != nil {
				return nil, err
			}
			v, err := st.GetSite(o.ctx, d)
			if errors.Is(err, store.ErrNotFound) {
				return nil, invalid("--sites", arg, "is no site (aegir site list --platform "+old.Name+" lists those of "+old.Name+")")
			}
			if err != nil {
				return nil, err
			}
			if v.PlatformID != old.ID {
				return nil, invalid("--sites", arg, "is a site of platform "+v.Platform+", not of "+old.Name)
			}
			if !seen[v.Domain] {
				seen[v.Domain] = true
				list = append(list, v)
			}
		}
	} else {
		all, err := st.ListSites(o.ctx, store.SiteFilter{Platform: old.Name})
		if err != nil {
			return nil, err
		}
		list = all
	}
	var out []string
	for _, v := range list {
		switch {
		case v.Status != entities.SiteInstalled && v.Status != entities.SiteDisabled:
			o.warnf("%s is left out: it is %s, not installed", v.Domain, v.Status)
		default:
			out = append(out, v.Domain)
		}
	}
	return out, nil
}

// printMigratePlan prints what a platform migrate would do and changes
// nothing: per wave, each site's move as a plan (hosting.PlanPlatformMigrate;
// the table one change a line, json or yaml the whole plan), and how the
// waves go on stderr.
func (o *PlatformMigrateOptions) printMigratePlan(old *entities.Platform, set hosting.MigrateSettings) error {
	r, err := o.runner()
	if err != nil {
		return err
	}
	mp, err := r.PlanPlatformMigrate(o.ctx, old, set)
	if err != nil {
		return err
	}
	o.infof("dry run: %d site(s) of %s would move to %s in %d wave(s), at most %d at once on a server, each checked on %s before its old copy goes; no new site starts once more than %d fail (or a canary fails); nothing was changed",
		mp.Sites, old.Name, mp.To, len(mp.Waves), mp.PerServer, mp.To, mp.Allowed)
	if o.format == "table" {
		return o.print(mp.Rows())
	}
	return o.print(mp)
}

// migrateStatus is platform migrate --status: the last platform migrate
// from OLD to NEW, and how many sites are still on OLD.
type migrateStatus struct {
	*hosting.MigrateProgress `yaml:",inline"`
	OnOld                    int `json:"on_old" yaml:"on_old"`
}

func (o *PlatformMigrateOptions) showMigrateStatus(st *store.Store, old, to *entities.Platform) error {
	ts, err := st.ListTasks(o.ctx, store.TaskFilter{Type: entities.TaskPlatformMigrate, TargetKind: entities.TargetPlatform, TargetID: old.ID})
	if err != nil {
		return err
	}
	var last *entities.Task
	for _, t := range ts {
		if t.Options[hosting.OptMigrateTo] == to.Name {
			last = t
			break
		}
	}
	if last == nil {
		return &Error{Code: ExitNotFound, Err: fmt.Errorf("no platform migrate from %s to %s has been queued", old.Name, to.Name),
			Hint: "see what it would do: aegir platform migrate " + old.Name + " " + to.Name + " --dry-run"}
	}
	p, err := hosting.MigrateProgressOf(o.ctx, st, last)
	if err != nil {
		return err
	}
	left, err := st.ListSites(o.ctx, store.SiteFilter{Platform: old.Name})
	if err != nil {
		return err
	}
	if !o.plainTable() {
		return o.print(migrateStatus{MigrateProgress: p, OnOld: len(left)})
	}
	o.printProgress(o.IO.Out, p)
	fmt.Fprintf(o.IO.Out, "%d site(s) on %s now\n", len(left), old.Name)
	return nil
}

// printProgress prints a platform migrate's progress as people read it:
// one line for the whole and each wave, then a table of its sites.
func (a *App) printProgress(w io.Writer, p *hosting.MigrateProgress) {
	fmt.Fprintf(w, "platform migrate %s -> %s (task %d, %s): %s\n", p.From, p.To, p.Task, p.Status, progressCounts(p.Done, p.Failed, p.Running, p.Left, p.Skipped))
	type siteRow struct {
		Wave   string `json:"wave"`
		Site   string `json:"site"`
		Status string `json:"status"`
		Task   string `json:"task"`
		Error  string `json:"error"`
	}
	var rows []siteRow
	for _, wv := range p.Waves {
		fmt.Fprintf(w, "  %-8s %s\n", wv.Name, progressCounts(wv.Done, wv.Failed, wv.Running, wv.Left, 0))
		for _, s := range wv.Sites {
			r := siteRow{Wave: wv.Name, Site: s.Domain, Status: s.Status, Error: s.Error}
			if s.Task != 0 {
				r.Task = strconv.FormatInt(s.Task, 10)
			}
			rows = append(rows, r)
		}
	}
	if len(rows) > 0 {
		_ = a.printTo(w, rows)
	}
}

func progressCounts(done, failed, running, left, skipped int) string {
	s := fmt.Sprintf("done %d, failed %d", done, failed)
	if running > 0 {
		s += fmt.Sprintf(", running %d", running)
	}
	s += fmt.Sprintf(", left %d", left)
	if skipped > 0 {
		s += fmt.Sprintf(", skipped %d", skipped)
	}
	return s
}

// runMigrate runs platform migrate task t in the foreground. Its progress
// goes to stderr: on a terminal a bar per wave, redrawn as sites move, with
// the failures above the bars; otherwise (a pipe, CI) the task's own
// lines, one per site as it ends. The sites' own logs are shown with
// --verbose only (each line after its site's domain); every line is kept
// in their tasks' logs.
func (a *App) runMigrate(t *entities.Task) (*entities.Task, error) {
	d, r, err := a.dispatcher()
	if err != nil {
		return nil, err
	}
	defer r.Pool.Close()
	bars := !a.quiet && !a.verbose && isTerminal(a.IO.Err) && termWidth(a.IO.Err) >= 40
	pr := &migrateProgress{a: a, w: a.IO.Err, bars: bars, width: termWidth(a.IO.Err)}
	echo := &taskEcho{a: a}
	d.Echo = func(k *entities.Task, l entities.LogLine) {
		switch {
		case k.ID != t.ID:
			if a.verbose {
				l.Message = k.Target + ": " + l.Message
				echo.line(l)
			}
		case bars:
			if l.Level == entities.LevelWarning || l.Level == entities.LevelError {
				pr.above(l)
			}
		default:
			echo.line(l)
		}
	}
	if bars {
		r.OnMigrate = pr.draw
	}
	done, err := d.RunTask(a.ctx, t.ID)
	pr.end()
	echo.end(done)
	var busy *queue.BusyError
	if errors.As(err, &busy) {
		return nil, &Error{Code: ExitBusy, Err: err, Hint: busy.Hint, Fix: busy.Fix}
	}
	return done, err
}

// migrateProgress draws a running platform migrate's bars on a terminal.
type migrateProgress struct {
	a     *App
	w     io.Writer
	bars  bool
	width int
	mu    sync.Mutex
	drawn int                      // lines of bars on the screen
	last  *hosting.MigrateProgress // what they show
}

// draw shows p's bars in place of those on the screen.
func (m *migrateProgress) draw(p *hosting.MigrateProgress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	m.last = p
	m.paint()
}

// above prints a log line above the bars.
func (m *migrateProgress) above(l entities.LogLine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clear()
	m.a.writeLogLine(m.w, l)
	m.paint()
}

// end leaves the last bars on the screen, below which the end line goes.
func (m *migrateProgress) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drawn = 0
}

func (m *migrateProgress) clear() {
	if m.drawn > 0 {
		fmt.Fprintf(m.w, "\x1b[%dA\x1b[J", m.drawn)
		m.drawn = 0
	}
}

func (m *migrateProgress) paint() {
	if m.last == nil {
		return
	}
	for _, wv := range m.last.Waves {
		fmt.Fprintln(m.w, waveBar(wv, m.width))
		m.drawn++
	}
}

// waveBar is one wave's line: its name, a bar of the sites that ended
// (# moved, x failed) and those running (>), and the counts.
func waveBar(wv hosting.WaveProgress, width int) string {
	n := len(wv.Sites)
	size := min(max(width-50, 10), 40)
	cells := func(k int) int { return k * size / max(n, 1) }
	done, failed, running := cells(wv.Done), cells(wv.Done+wv.Failed)-cells(wv.Done), cells(wv.Done+wv.Failed+wv.Running)-cells(wv.Done+wv.Failed)
	bar := strings.Repeat("#", done) + strings.Repeat("x", failed) + strings.Repeat(">", running)
	bar += strings.Repeat("-", max(size-len(bar), 0))
	return fmt.Sprintf("%-8s [%s] %d/%d  %s", wv.Name, bar, wv.Done+wv.Failed, n, progressCounts(wv.Done, wv.Failed, wv.Running, wv.Left, 0))
}
