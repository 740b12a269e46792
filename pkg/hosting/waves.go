package hosting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/queue"
	"github.com/aegir-project/aegir/pkg/store"
)

// A platform migrate (task platform.migrate, on the old platform) moves
// the sites of its plan to another platform: first the canary sites, then
// waves of a few, each site by a site.migrate child with the health gate
// (the move commits only once the site answers on its new platform as it
// did before; else it is rolled back), at most a few moves at once on any
// one web or database server. When more sites failed than allowed, no new
// site starts and the task ends in error, naming them. Its progress is
// its children: MigrateProgressOf reads it at any time, also after the
// master was killed.

// Options of a platform.migrate task.
const (
	OptMigrateTo   = "to"           // the new platform
	OptMigrateList = "sites"        // the plan: the sites' domains in order, comma-separated
	OptCanary      = "canary"       // how many sites go first, alone in their wave
	OptWave        = "wave"         // how many sites a wave has after the canary
	OptPerServer   = "per_server"   // moves at once on one web or database server
	OptMaxFailures = "max_failures" // failures allowed: N, or P% of the plan
)

// Defaults of a platform migrate's settings.
const (
	DefaultCanary    = 1
	DefaultWave      = 10
	DefaultPerServer = 2
)

// childBusyWait is how long a child waits for another task of its site
// (a cron run, a backup) to end before it counts as failed.
var childBusyWait = 5 * time.Minute

// MigrateSettings are a platform migrate's settings, from its options.
type MigrateSettings struct {
	To          string
	Sites       []string
	Canary      int
	Wave        int
	PerServer   int
	MaxFailures string // N or P%; "" is 0
}

// Options are the task options that record s.
func (s MigrateSettings) Options() map[string]string {
	return map[string]string{OptMigrateTo: s.To, OptMigrateList: strings.Join(s.Sites, ","), OptCanary: strconv.Itoa(s.Canary),
		OptWave: strconv.Itoa(s.Wave), OptPerServer: strconv.Itoa(s.PerServer), OptMaxFailures: s.MaxFailures}
}

// MigrateSettingsOf reads the settings of platform.migrate task t.
func MigrateSettingsOf(t *entities.Task) (MigrateSettings, error) {
	o := t.Options
	s := MigrateSettings{To: o[OptMigrateTo], MaxFailures: o[OptMaxFailures]}
	if l := o[OptMigrateList]; l != "" {
		s.Sites = strings.Split(l, ",")
	}
	for _, f := range []struct {
		key string
		p   *int
		min int
	}{{OptCanary, &s.Canary, 0}, {OptWave, &s.Wave, 1}, {OptPerServer, &s.PerServer, 1}} {
		n, err := strconv.Atoi(o[f.key])
		if err != nil || n < f.min {
			return s, fmt.Errorf("task %d: option %s is %q, not a whole number of at least %d", t.ID, f.key, o[f.key], f.min)
		}
		*f.p = n
	}
	if _, err := AllowedFailures(s.MaxFailures, len(s.Sites)); err != nil {
		return s, fmt.Errorf("task %d: option %s: %w", t.ID, OptMaxFailures, err)
	}
	return s, nil
}

// AllowedFailures is how many of total sites may fail before a platform
// migrate stops: spec is N, or P% of total (rounded down); "" is 0.
func AllowedFailures(spec string, total int) (int, error) {
	if spec == "" {
		return 0, nil
	}
	num, pct := strings.CutSuffix(spec, "%")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strings.Trim(num, "0123456789") != "" || (pct && n > 100) {
		return 0, errors.New("must be a whole number of sites (2) or a percentage of them (10%)")
	}
	if pct {
		return total * n / 100, nil
	}
	return n, nil
}

// Waves splits sites into the canary (the first canary sites; none when
// canary is 0) and waves of wave sites after it.
func Waves(sites []string, canary, wave int) [][]string {
	var out [][]string
	canary = min(canary, len(sites))
	if canary > 0 {
		out = append(out, sites[:canary])
	}
	for rest := sites[canary:]; len(rest) > 0; {
		n := min(wave, len(rest))
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out
}

// WaveName names wave i of a plan with (or without) a canary: "canary",
// "wave 1", ...
func WaveName(i int, canary bool) string {
	if canary {
		if i == 0 {
			return "canary"
		}
		return "wave " + strconv.Itoa(i)
	}
	return "wave " + strconv.Itoa(i+1)
}

// Statuses of a site in a platform migrate's progress.
const (
	MoveLeft    = "left"    // not started
	MoveRunning = "running" // its move runs
	MoveDone    = "done"    // on the new platform
	MoveFailed  = "failed"  // its move failed: the site is where it was
	MoveSkipped = "skipped" // not on the old platform any more when its turn came
)

// MoveProgress is one site of a platform migrate.
type MoveProgress struct {
	Domain string `json:"domain" yaml:"domain"`
	Wave   string `json:"wave" yaml:"wave"`
	Status string `json:"status" yaml:"status"`
	Task   int64  `json:"task,omitempty" yaml:"task,omitempty"` // its site.migrate
	Error  string `json:"error,omitempty" yaml:"error,omitempty"`
}

// WaveProgress is one wave of a platform migrate.
type WaveProgress struct {
	Name    string         `json:"name" yaml:"name"`
	Done    int            `json:"done" yaml:"done"`
	Failed  int            `json:"failed" yaml:"failed"`
	Running int            `json:"running" yaml:"running"`
	Left    int            `json:"left" yaml:"left"`
	Sites   []MoveProgress `json:"sites" yaml:"sites"`
}

// MigrateProgress is how far a platform migrate got.
type MigrateProgress struct {
	Task    int64          `json:"task" yaml:"task"`
	From    string         `json:"from" yaml:"from"`
	To      string         `json:"to" yaml:"to"`
	Status  string         `json:"status" yaml:"status"` // the task's
	Done    int            `json:"done" yaml:"done"`
	Failed  int            `json:"failed" yaml:"failed"`
	Running int            `json:"running" yaml:"running"`
	Skipped int            `json:"skipped" yaml:"skipped"`
	Left    int            `json:"left" yaml:"left"`
	Waves   []WaveProgress `json:"waves" yaml:"waves"`
}

// FailedSites names the sites that failed, each with its task.
func (p *MigrateProgress) FailedSites() []string {
	var out []string
	for _, w := range p.Waves {
		for _, s := range w.Sites {
			if s.Status == MoveFailed {
				out = append(out, fmt.Sprintf("%s (task %d)", s.Domain, s.Task))
			}
		}
	}
	return out
}

// count tallies the sites' statuses into the waves and the whole.
func (p *MigrateProgress) count() {
	p.Done, p.Failed, p.Running, p.Skipped, p.Left = 0, 0, 0, 0, 0
	for i := range p.Waves {
		w := &p.Waves[i]
		w.Done, w.Failed, w.Running, w.Left = 0, 0, 0, 0
		for _, s := range w.Sites {
			switch s.Status {
			case MoveDone:
				w.Done++
			case MoveFailed:
				w.Failed++
			case MoveRunning:
				w.Running++
			case MoveSkipped:
				p.Skipped++
			default:
				w.Left++
			}
		}
		p.Done += w.Done
		p.Failed += w.Failed
		p.Running += w.Running
		p.Left += w.Left
	}
}

// clone is a copy of p that shares nothing with it.
func (p *MigrateProgress) clone() *MigrateProgress {
	c := *p
	c.Waves = make([]WaveProgress, len(p.Waves))
	for i, w := range p.Waves {
		c.Waves[i] = w
		c.Waves[i].Sites = append([]MoveProgress(nil), w.Sites...)
	}
	return &c
}

// newProgress is the progress of a platform migrate that has not started.
func newProgress(t *entities.Task, s MigrateSettings) *MigrateProgress {
	p := &MigrateProgress{Task: t.ID, From: t.Target, To: s.To, Status: t.Status}
	for i, sites := range Waves(s.Sites, s.Canary, s.Wave) {
		w := WaveProgress{Name: WaveName(i, s.Canary > 0)}
		for _, d := range sites {
			w.Sites = append(w.Sites, MoveProgress{Domain: d, Wave: w.Name, Status: MoveLeft})
		}
		p.Waves = append(p.Waves, w)
	}
	p.count()
	return p
}

// MigrateProgressOf reads how far platform.migrate task t got, from its
// children: a site whose child succeeded is done, one whose child failed
// has failed, and one with none is left (or was skipped: its log says).
func MigrateProgressOf(ctx context.Context, st *store.Store, t *entities.Task) (*MigrateProgress, error) {
	s, err := MigrateSettingsOf(t)
	if err != nil {
		return nil, err
	}
	p := newProgress(t, s)
	kids, err := st.ListTasks(ctx, store.TaskFilter{Parent: t.ID})
	if err != nil {
		return nil, err
	}
	latest := map[string]*entities.Task{} // newest first: the first seen is the latest
	for _, k := range kids {
		if _, ok := latest[k.Target]; !ok {
			latest[k.Target] = k
		}
	}
	for i := range p.Waves {
		for j := range p.Waves[i].Sites {
			m := &p.Waves[i].Sites[j]
			k := latest[m.Domain]
			if k == nil {
				continue
			}
			m.Task = k.ID
			switch k.Status {
			case entities.TaskSuccess, entities.TaskWarning:
				m.Status = MoveDone
			case entities.TaskError:
				m.Status, m.Error = MoveFailed, k.Error
			case entities.TaskProcessing:
				m.Status = MoveRunning
			case entities.TaskCancelled:
				if k.Error == skippedWhy {
					m.Status = MoveSkipped
				}
			}
		}
	}
	p.count()
	return p, nil
}

// skippedWhy is the error of the child that stands for a site skipped.
const skippedWhy = "skipped: the site was not on the platform any more when its turn came"

// migratePlatform runs platform.migrate task t (see the top of this file).
func (r *Runner) migratePlatform(ctx context.Context, t *entities.Task, log func(level, msg string, fix ...entities.Action)) queue.Outcome {
	fail := func(err error) queue.Outcome {
		log(entities.LevelError, err.Error())
		return queue.Outcome{Status: entities.TaskError, Code: "invalid_context", Error: err.Error()}
	}
	if r.RunChild == nil {
		return fail(errors.New("this dispatcher cannot run the sites' migrate tasks (no RunChild): run the platform migrate from the command line"))
	}
	set, err := MigrateSettingsOf(t)
	if err != nil {
		return fail(err)
	}
	from, err := r.Store.GetPlatformByID(ctx, t.TargetID)
	if err != nil {
		return fail(err)
	}
	to, err := r.Store.GetPlatform(ctx, set.To)
	if err != nil {
		return fail(err)
	}
	if err := store.OpenForSites(to); err != nil {
		// Locked since the platform migrate was queued: no site starts.
		log(entities.LevelError, err.Error())
		var ce *store.ConflictError
		errors.As(err, &ce)
		return queue.Outcome{Status: entities.TaskError, Code: "platform_locked", Error: err.Error(), Hint: ce.Hint, Fix: ce.Fix}
	}
	allowed, _ := AllowedFailures(set.MaxFailures, len(set.Sites))
	w := &waves{r: r, t: t, log: log, from: from, to: to, set: set, allowed: allowed, busy: map[string]int{},
		prog: newProgress(t, set)}
	w.cond = sync.NewCond(&w.mu)
	log(entities.LevelInfo, fmt.Sprintf("migrating %d site(s) from platform %s to %s: %s; at most %d move(s) at once on a server; %s",
		len(set.Sites), from.Name, to.Name, w.planLine(), set.PerServer, w.allowedLine()))
	w.report()
	for i := range w.prog.Waves {
		if !w.runWave(ctx, i) {
			break
		}
	}
	if n, err := r.Store.CancelChildren(context.WithoutCancel(ctx), t.ID, "cancelled: the platform migrate stopped before it ran"); err != nil {
		log(entities.LevelWarning, "cancelling the queued site moves: "+err.Error())
	} else if n > 0 {
		log(entities.LevelDebug, fmt.Sprintf("cancelled %d queued site move(s)", n))
	}
	return w.outcome(ctx)
}

// waves is a running platform migrate.
type waves struct {
	r        *Runner
	t        *entities.Task
	log      func(level, msg string, fix ...entities.Action)
	from, to *entities.Platform
	set      MigrateSettings
	allowed  int

	mu      sync.Mutex
	cond    *sync.Cond
	busy    map[string]int // moves running per server
	running int
	failed  int
	stop    string // why no new site starts; "" while they may
	prog    *MigrateProgress
}

func (w *waves) planLine() string {
	var parts []string
	for _, wv := range w.prog.Waves {
		parts = append(parts, fmt.Sprintf("%s %d", wv.Name, len(wv.Sites)))
	}
	return strings.Join(parts, ", ")
}

func (w *waves) allowedLine() string {
	if w.allowed == 0 {
		return "the first failure stops it"
	}
	return fmt.Sprintf("it stops once more than %d fail (a failed canary stops it at once)", w.allowed)
}

// report hands the progress to the front end's OnMigrate, if any.
func (w *waves) report() {
	if w.r.OnMigrate == nil {
		return
	}
	w.mu.Lock()
	p := w.prog.clone()
	w.mu.Unlock()
	w.r.OnMigrate(p)
}

// runWave runs wave i to its end and says whether the next may start.
func (w *waves) runWave(ctx context.Context, i int) bool {
	wv := &w.prog.Waves[i]
	w.log(entities.LevelInfo, fmt.Sprintf("%s: %d site(s): %s", wv.Name, len(wv.Sites), strings.Join(domains(wv.Sites), ", ")))
	var wg sync.WaitGroup
	for j := range wv.Sites {
		site, servers, ok := w.next(ctx, i, j)
		if !ok {
			break
		}
		if site == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.move(ctx, i, j, site, servers)
		}()
	}
	wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop == "" && ctx.Err() != nil {
		w.stop = "the task was interrupted"
	}
	return w.stop == ""
}

// next waits until site j of wave i may start: no failure limit passed
// and a free move on each of its servers, which it takes. nil with ok:
// the site is skipped (not on the old platform any more); !ok: no new
// site starts.
func (w *waves) next(ctx context.Context, i, j int) (*entities.Site, []string, bool) {
	m := &w.prog.Waves[i].Sites[j]
	site, err := w.r.Store.GetSite(ctx, m.Domain)
	if err == nil && (site.PlatformID != w.from.ID || site.Domain != m.Domain ||
		site.Status != entities.SiteInstalled && site.Status != entities.SiteDisabled) {
		err = fmt.Errorf("%s is on platform %s (%s) now", m.Domain, site.Platform, site.Status)
	}
	if err != nil {
		w.log(entities.LevelInfo, fmt.Sprintf("%s: skipped: %v", m.Domain, err))
		w.skip(ctx, m, site)
		return nil, nil, true
	}
	servers := []string{w.from.Server, w.to.Server, site.DBServer}
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.stop == "" && ctx.Err() == nil && !w.free(servers) {
		w.cond.Wait()
	}
	if w.stop != "" || ctx.Err() != nil {
		return nil, nil, false
	}
	for _, s := range uniq(servers) {
		w.busy[s]++
	}
	w.running++
	m.Status = MoveRunning
	w.prog.count()
	return site, servers, true
}

// skip records a site skipped as a cancelled child, so that the progress
// read from the children says so too.
func (w *waves) skip(ctx context.Context, m *MoveProgress, site *entities.Site) {
	var id int64
	if site != nil {
		if k, err := w.r.Store.QueueChildTask(ctx, w.t.ID, site, entities.TaskSiteMigrate, nil); err == nil {
			id = k.ID
			_, _ = w.r.Store.CancelQueued(ctx, k.ID, skippedWhy)
		}
	}
	w.mu.Lock()
	m.Status, m.Task = MoveSkipped, id
	w.prog.count()
	w.mu.Unlock()
	w.report()
}

// free says whether each of servers has a move to spare (w.mu held).
func (w *waves) free(servers []string) bool {
	for _, s := range uniq(servers) {
		if w.busy[s] >= w.set.PerServer {
			return false
		}
	}
	return true
}

func uniq(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func domains(sites []MoveProgress) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.Domain
	}
	return out
}

// move runs the site.migrate child of site j of wave i, then gives its
// servers' moves back and records its end.
func (w *waves) move(ctx context.Context, i, j int, site *entities.Site, servers []string) {
	m := &w.prog.Waves[i].Sites[j]
	w.report()
	k, err := w.runChild(ctx, site)
	w.mu.Lock()
	for _, s := range uniq(servers) {
		w.busy[s]--
	}
	w.running--
	if k != nil {
		m.Task = k.ID
	}
	line := ""
	switch {
	case err == nil && (k.Status == entities.TaskSuccess || k.Status == entities.TaskWarning):
		m.Status = MoveDone
		line = fmt.Sprintf("%s: moved to platform %s (task %d, %s)", m.Domain, w.to.Name, k.ID, took(k))
	default:
		if err == nil {
			err = errors.New(k.Error)
		}
		m.Status, m.Error = MoveFailed, err.Error()
		w.failed++
		line = fmt.Sprintf("%s: failed, it stays on platform %s: %s", m.Domain, w.from.Name, m.Error)
		if k != nil {
			line = fmt.Sprintf("%s: failed (task %d), it stays on platform %s: %s", m.Domain, k.ID, w.from.Name, m.Error)
		}
		switch {
		case w.stop != "":
		case w.prog.Waves[i].Name == "canary":
			w.stop = "a canary site failed"
		case w.failed > w.allowed:
			w.stop = fmt.Sprintf("%d site(s) failed, more than the %d allowed", w.failed, w.allowed)
		}
	}
	w.prog.count()
	line += fmt.Sprintf(" [%s; done %d, failed %d, left %d]", w.prog.Waves[i].Name, w.prog.Done, w.prog.Failed, w.prog.Left+w.prog.Running)
	level := entities.LevelInfo
	if m.Status == MoveFailed {
		level = entities.LevelWarning
	}
	w.log(level, line)
	w.cond.Broadcast()
	w.mu.Unlock()
	w.report()
}

func took(k *entities.Task) string {
	if k.Started == nil || k.Finished == nil {
		return "done"
	}
	return fmt.Sprintf("%.1f s", k.Finished.Sub(*k.Started).Seconds())
}

// childOptions are the options of the site.migrate child that moves site
// to platform to (its plan in a dry run is worked out from the same).
func childOptions(to *entities.Platform, site *entities.Site) map[string]string {
	return map[string]string{"platform": to.Name, "db_server": site.DBServer, "health_gate": "1"}
}

// runChild queues the site's site.migrate child and runs it here, waiting
// for another task of the site to end first (for at most childBusyWait).
func (w *waves) runChild(ctx context.Context, site *entities.Site) (*entities.Task, error) {
	k, err := w.r.Store.QueueChildTask(ctx, w.t.ID, site, entities.TaskSiteMigrate, childOptions(w.to, site))
	if err != nil {
		return nil, err
	}
	end := time.Now().Add(childBusyWait)
	for {
		done, err := w.r.RunChild(ctx, k.ID)
		if err == nil || !errors.Is(err, queue.ErrBusy) || time.Now().After(end) || ctx.Err() != nil {
			if err != nil {
				_, _ = w.r.Store.CancelQueued(context.WithoutCancel(ctx), k.ID, "cancelled: "+err.Error())
				if done == nil {
					done = k
				}
			}
			return done, err
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

// outcome is how the platform migrate ended: success when every site
// moved (or was skipped), warning when some failed but no more than
// allowed, error when it stopped, naming the failed sites and those left.
func (w *waves) outcome(ctx context.Context) queue.Outcome {
	w.mu.Lock()
	p := w.prog.clone()
	stop := w.stop
	w.mu.Unlock()
	p.Status = entities.TaskSuccess
	res := queue.Outcome{Status: entities.TaskSuccess, Result: p}
	failed := p.FailedSites()
	summary := fmt.Sprintf("%d moved, %d failed, %d skipped, %d left", p.Done, p.Failed, p.Skipped, p.Left)
	hint := fmt.Sprintf("fix what makes them fail on platform %s (each task's log says), then run the platform migrate again: it goes on with the sites left on %s",
		w.to.Name, w.from.Name)
	fix := []entities.Action{entities.Do("task.show", strconv.FormatInt(w.t.ID, 10)), entities.Do("task.retry", strconv.FormatInt(w.t.ID, 10))}
	switch {
	case stop != "" || ctx.Err() != nil:
		if stop == "" {
			stop = "the task was interrupted"
		}
		res.Status, res.Code, res.Hint, res.Fix = entities.TaskError, "migrate_stopped", hint, fix
		res.Error = fmt.Sprintf("platform migrate from %s to %s stopped (%s): %s", w.from.Name, w.to.Name, stop, summary)
		if len(failed) > 0 {
			res.Error += "; failed: " + strings.Join(failed, ", ")
		}
		if p.Left > 0 {
			res.Error += fmt.Sprintf("; no new site started, %d stay on %s", p.Left, w.from.Name)
		}
		p.Status = entities.TaskError
	case len(failed) > 0:
		res.Status = entities.TaskWarning
		w.log(entities.LevelWarning, fmt.Sprintf("%s; failed (within the %d allowed): %s; hint: %s", summary, w.allowed, strings.Join(failed, ", "), hint))
		p.Status = entities.TaskWarning
	default:
		w.log(entities.LevelInfo, fmt.Sprintf("platform migrate from %s to %s done: %s", w.from.Name, w.to.Name, summary))
	}
	if res.Error != "" {
		w.log(entities.LevelError, res.Error)
		w.log(entities.LevelInfo, "hint: "+res.Hint)
	}
	if w.r.OnMigrate != nil {
		w.r.OnMigrate(p)
	}
	return res
}
