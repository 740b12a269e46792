package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

func init() {
	// site.rescue undoes a restore, migrate or clone whose dispatcher died
	// (the front end runs it from its rescue of dead tasks, with the dead
	// task's context and id).
	engine.Register("site.rescue", siteRescue)
}

// A move's undo steps (moveOp) are kept on the master while it runs, in
// AEGIR_HOME/journal/task-ID.json (0600), each written before the step it
// undoes is taken: a dispatcher killed in the middle (kill -9, OOM, a
// reboot) leaves the journal, and site.rescue plays it back. Every step is
// idempotent, so one whose action never happened undoes nothing.
type journal struct {
	path string // the file, or (js) the place named in messages
	// js keeps the journal in the state instead (engine.Journals), as
	// task id's, where every master reads it.
	js   engine.Journals
	id   int64
	Kind string    `json:"kind"`
	Ops  []moveOp  `json:"ops"`
	Done *moveDone `json:"done,omitempty"`
	// Backup is the backup a migrate or clone took first: recorded
	// whatever the rescue does, as a failed move's is.
	Backup *provision.BackupRecord `json:"backup,omitempty"`
}

// moveDone is written once a move works in its new state, before its
// clean-up: a rescue then saves its result and finishes the clean-up.
type moveDone struct {
	Changes *provision.Changes `json:"result,omitempty"`
	// Flat is the same written by an aegir before the typed changes: one
	// object of flat keys ("site_db_name"), read so that a move a crash
	// left behind across an upgrade is still finished right.
	Flat *flatMoveChanges `json:"changes,omitempty"`
}

// flatMoveChanges are the keys a finished move wrote in the flat form.
type flatMoveChanges struct {
	DBName    string                  `json:"site_db_name"`
	DBUser    string                  `json:"site_db_user"`
	GrantHost string                  `json:"site_db_grant_host"`
	Status    string                  `json:"site_status"`
	Platform  string                  `json:"site_platform"`
	DBServer  string                  `json:"site_db_server"`
	Domain    string                  `json:"site_domain"`
	Cert      *provision.CertRecord   `json:"site_cert"`
	Backup    *provision.BackupRecord `json:"backup"`
}

// changes are the move's own changes, whichever form they were written in.
func (d *moveDone) changes() *provision.Changes {
	if d.Changes != nil || d.Flat == nil {
		return d.Changes
	}
	f := d.Flat
	return &provision.Changes{Backup: f.Backup, Site: &provision.SiteChanges{Status: f.Status, Platform: f.Platform, DBServer: f.DBServer, Domain: f.Domain,
		Cert: f.Cert, DB: &provision.DBRecord{Name: f.DBName, User: f.DBUser, GrantHost: f.GrantHost}}}
}

// moveOp is one undo step of a move, run on the web or database server of
// the site where it goes (dst) or where it was (src).
type moveOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Aside string `json:"aside,omitempty"`
	DB    string `json:"db,omitempty"`
}

// The undo steps.
const (
	opDropDB      = "drop_db"      // drop database and user DB on dst's database server
	opRemove      = "remove"       // remove Path on dst's web server
	opPutBack     = "put_back"     // put Aside back at Path (when it is there)
	opSrcSettings = "src_settings" // write src's settings again from its record
	opDstSite     = "dst_site"     // remove dst's settings and files
	opSrcVhost    = "src_vhost"    // write src's virtual host again from its record
	opDstVhost    = "dst_vhost"    // remove dst's virtual host
	opDstRuntime  = "dst_runtime"  // remove dst's pools, user and runtime directory
	opSrcRuntime  = "src_runtime"  // write src's runtime (its pool) again from its record
)

func journalPath(home string, taskID int64) string {
	return filepath.Join(home, "journal", "task-"+strconv.FormatInt(taskID, 10)+".json")
}

// siteLockPath names the lock a move holds on its site (by domain, which
// openSite has checked).
func siteLockPath(home, domain string) string {
	return filepath.Join(home, "journal", "site-"+domain+".json")
}

// errLocked is lockJournal's answer when another process holds the lock.
var errLocked = errors.New("the journal is locked by another process")

// lockJournal takes the lock of the journal at p (task-ID.lock beside
// it), without waiting: the move holds it for its whole run, a rescue
// while it plays the journal back, so that a rescue never undoes a move
// that still runs (a dispatcher that lost its lease but lives: its own
// rollback undoes it). The lock goes with the process.
func lockJournal(p string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	f, err := exec.LockFile(strings.TrimSuffix(p, ".json") + ".lock")
	if errors.Is(err, exec.ErrLocked) {
		return nil, errLocked
	}
	return f, err
}

// unlockJournal removes the lock file and lets the lock go.
func unlockJournal(f *os.File) {
	if f != nil {
		_ = os.Remove(f.Name())
		_ = f.Close()
	}
}

// taskLockName and siteLockName name a move's locks: its task's (a
// rescue waits for it) and its site's.
func taskLockName(id int64) string      { return "task-" + strconv.FormatInt(id, 10) }
func siteLockName(domain string) string { return "site-" + domain }

// takeLock takes the lock name (taskLockName, siteLockName) without
// waiting (wait: for a holder on another master, until its lease has run
// out): in the state when env has Journals, else as a file in the aegir
// home (a hold that cannot be lost). errLocked when another process holds
// it.
func takeLock(ctx context.Context, env *engine.Env, name string, wait bool) (hold *engine.Hold, where string, err error) {
	if env.Journals != nil {
		h, err := env.Journals.Lock(ctx, name, wait)
		if errors.Is(err, engine.ErrLockHeld) {
			return nil, "the state's move lock " + name, fmt.Errorf("%w: %v", errLocked, err)
		}
		return h, "the state's move lock " + name, err
	}
	p := filepath.Join(env.Home, "journal", name+".json")
	f, err := lockJournal(p)
	if err != nil {
		return nil, strings.TrimSuffix(p, ".json") + ".lock", err
	}
	return engine.NewHold(0, nil, func() { unlockJournal(f) }), f.Name(), nil
}

// watchHolds is ctx, cancelled once one of the move's holds is lost
// (another master took the move over), and the function that stops
// watching.
func (m *move) watchHolds(ctx context.Context) (context.Context, func()) {
	if len(m.holds) == 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	for _, h := range m.holds {
		go func() {
			select {
			case <-h.Lost():
				cancel(engine.ErrLockLost)
			case <-stop:
			}
		}()
	}
	return ctx, func() { close(stop); cancel(nil) }
}

// held checks now that the move still holds its locks: the taken-over
// error once another master took it over (lost), which stops the move
// where it is, with nothing more done here, no rollback either: the new
// holder plays its journal back.
func (m *move) held(ctx context.Context) error {
	for _, h := range m.holds {
		if h.Check(context.WithoutCancel(ctx)) != nil {
			return m.takenOver()
		}
	}
	return nil
}

func (m *move) takenOver() error {
	m.lost = true
	c := m.src.c
	return provision.Errorf(provision.ErrCancelled, "see in the task's log how its playback went, then retry the task if still wanted",
		"another master took over this %s of %s and plays it back (this master did not renew its lock within the lease: it was stopped or cut off from the state); nothing more was done here",
		m.kind, c.Site.Domain).With(entities.Do("task.log", c.TaskRef()), entities.Do("task.retry", c.TaskRef()))
}

// newJournal starts the journal of a move; nil when the task has no id or
// there is no aegir home (aegir provision run by hand).
func newJournal(env *engine.Env, c *provision.Job, kind string) *journal {
	if c.TaskID == 0 {
		return nil
	}
	if env.Journals != nil {
		return &journal{js: env.Journals, id: c.TaskID, path: env.Journals.Where(c.TaskID), Kind: kind}
	}
	if env.Home == "" {
		return nil
	}
	return &journal{path: journalPath(env.Home, c.TaskID), Kind: kind}
}

// loadJournal reads task id's journal (fs.ErrNotExist: none).
func loadJournal(ctx context.Context, env *engine.Env, id int64) (*journal, error) {
	if env.Journals == nil {
		return readJournal(journalPath(env.Home, id))
	}
	b, err := env.Journals.Load(ctx, id)
	if errors.Is(err, engine.ErrNoJournal) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	j := &journal{js: env.Journals, id: id, path: env.Journals.Where(id)}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("journal %s is damaged: %w", j.path, err)
	}
	return j, nil
}

func readJournal(p string) (*journal, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	j := &journal{path: p}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("journal %s is damaged: %w", p, err)
	}
	return j, nil
}

// save writes the journal whole (a new file renamed over the old one).
func (j *journal) save() error {
	if j == nil {
		return nil
	}
	if j.js != nil {
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		return j.js.Save(context.Background(), j.id, b)
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	// Synced, file and directory: the journal is read after a crash.
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, j.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(j.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (j *journal) remove() { _ = j.drop() }

// drop removes the journal: nil when it is gone (or there was none).
func (j *journal) drop() error {
	if j == nil {
		return nil
	}
	if j.js != nil {
		return j.js.Remove(context.Background(), j.id)
	}
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// where is the place to check when the journal cannot be written.
func (j *journal) where() string {
	if j.js != nil {
		return "the connection to the state and its free space"
	}
	return "the free space and permissions of " + filepath.Dir(j.path)
}

// push records an undo step for the rollback of this run and on disk.
// A journal that cannot be written stops the move (and rolls it back)
// before its next step.
func (m *move) push(op moveOp) error {
	m.u.push(m.describe(op), func(ctx context.Context) error { return m.undo(ctx, op) })
	if m.j != nil {
		m.j.Ops = append(m.j.Ops, op)
		if err := m.j.save(); errors.Is(err, engine.ErrLockLost) {
			return m.takenOver()
		} else if err != nil {
			return provision.Errorf(provision.ErrCommand, "check "+m.j.where(),
				"cannot write the journal of the %s: %v", m.kind, err)
		}
	}
	return nil
}

func (m *move) describe(op moveOp) string {
	src, dst := m.src, m.dst
	switch op.Op {
	case opDropDB:
		return fmt.Sprintf("drop database %s and user %s on %s", op.DB, op.DB, dst.c.Site.DBServer.Machine.Name)
	case opRemove:
		return "remove " + op.Path + " on " + dst.ex.Host()
	case opPutBack:
		return "put " + op.Path + " back on " + dst.ex.Host()
	case opSrcSettings:
		return "write the settings of " + src.c.Site.Domain + " again from its record"
	case opDstSite:
		return "remove the settings and files of " + dst.c.Site.Domain + " from " + dst.p.Root
	case opSrcVhost:
		return "write the virtual host of " + src.c.Site.Domain + " back"
	case opDstVhost:
		return "remove the virtual host of " + dst.c.Site.Domain + " on " + dst.c.Site.Web.Name
	case opDstRuntime:
		return "remove the php-fpm pool, Unix user and runtime directory of " + dst.c.Site.Domain + " on " + dst.c.Site.Web.Name
	case opSrcRuntime:
		return "write the php-fpm pool of " + src.c.Site.Domain + " back"
	}
	return op.Op
}

// undo takes one step back.
func (m *move) undo(ctx context.Context, op moveOp) error {
	src, dst := m.src, m.dst
	switch op.Op {
	case opDropDB:
		if m.svc == nil {
			return fmt.Errorf("database server %s not reached", dst.c.Site.DBServer.Machine.Name)
		}
		return m.svc.DropDatabase(ctx, op.DB, op.DB, dst.c.Site.DB.GrantHost)
	case opRemove:
		return dst.ex.RemoveAll(ctx, op.Path)
	case opPutBack:
		if _, err := dst.ex.Lstat(ctx, op.Aside); errors.Is(err, fs.ErrNotExist) {
			return nil // never set aside
		}
		if err := dst.ex.RemoveAll(ctx, op.Path); err != nil {
			return err
		}
		if err := dst.ex.Rename(ctx, op.Aside, op.Path); err != nil {
			return err
		}
		// The settings put back are what php-fpm must run again.
		if dst.ws != nil {
			dst.refreshPHP(ctx)
		}
		return nil
	case opSrcSettings:
		_, err := src.writeSettings(ctx)
		return err
	case opDstSite:
		return app.RemoveSite(ctx, dst.ex, dst.p, dst.c.Site.Domain)
	case opSrcVhost:
		if err := src.locateRuntime(ctx); err != nil {
			return err
		}
		_, err := src.ws.WriteSite(ctx, src.vhost(src.c.Site.Status == entities.SiteDisabled))
		return err
	case opDstVhost:
		_, err := dst.ws.RemoveSite(ctx, dst.c.Site.Domain)
		return err
	case opDstRuntime:
		_, err := dst.dropRuntime(ctx, true)
		return err
	case opSrcRuntime:
		src.alsoRoots = nil
		_, err := src.prepareRuntime(ctx, nil)
		return err
	}
	return fmt.Errorf("unknown undo step %q", op.Op)
}

// siteRescue plays back the journal of a restore, migrate or clone whose
// dispatcher died: undone step by step, newest first, as its own rollback
// would have, so that the site works where it was; or, when the move was
// done and only its clean-up was left, that clean-up, and the move's
// result as this task's changes for the front end to save.
func siteRescue(ctx context.Context, env *engine.Env, c *provision.Job) (*provision.Changes, error) {
	if env.Home == "" && env.Journals == nil || c.TaskID == 0 {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give task_id, the id of the dead task, and run it with its aegir home",
			"site.rescue needs the dead task's id and the aegir home its journal is in")
	}
	// A move that still runs holds its task's lock; one on another master
	// that died has its lock taken over once its lease has run out.
	hold, _, err := takeLock(ctx, env, taskLockName(c.TaskID), true)
	if errors.Is(err, errLocked) {
		env.Logf(provision.LevelWarning, "task %d still runs in another process (it holds the lock of its journal): its own rollback undoes it; nothing done here (%v)", c.TaskID, err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer hold.Release()
	// And the dead move's site lock, so that nothing else moves the site
	// while its move is undone (and the lock does not outlive it).
	for _, domain := range []string{c.Site.Domain, targetDomain(c)} {
		if domain == "" || strings.ContainsAny(domain, "/\x00") {
			continue
		}
		if h, _, err := takeLock(ctx, env, siteLockName(domain), true); err == nil {
			defer h.Release()
		}
	}
	j, err := loadJournal(ctx, env, c.TaskID)
	if errors.Is(err, fs.ErrNotExist) {
		env.Logf(provision.LevelInfo, "task %d left nothing to undo", c.TaskID)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := &move{env: env, kind: j.Kind, j: j}
	m.u.env = env
	switch j.Kind {
	case "restore":
		m.src, m.dst, err = openInPlace(ctx, env, c)
	case "sync":
		m.src, m.dst, err = openInPlace(ctx, env, c.AtTarget())
	default:
		m.src, m.dst, err = openMove(ctx, env, c)
	}
	if err != nil {
		return nil, err
	}
	m.classify()
	if j.Done != nil {
		env.Logf(provision.LevelInfo, "the %s of %s was done; finishing its clean-up and saving its result", j.Kind, c.Site.Domain)
		for _, op := range j.Ops {
			if op.Op == opPutBack {
				m.aside = append(m.aside, op.Aside)
			}
		}
		// The database the site now uses: the old one is dropped unless
		// it is that one.
		ch := j.Done.changes().Merge(&provision.Changes{MoveDone: true})
		if ch.Site != nil && ch.Site.DB != nil && ch.Site.DB.Name != "" {
			m.dst.c.Site.DB.Name = ch.Site.DB.Name
		}
		m.cleanup(ctx)
		j.remove()
		return ch, nil
	}
	// Without the database server, the file steps are still undone.
	if svc, err := m.dst.db(ctx); err != nil {
		env.Logf(provision.LevelError, "cannot reach the database server %s: %v", m.dst.c.Site.DBServer.Machine.Name, err)
	} else {
		m.svc = svc
		defer svc.Close()
	}
	env.Logf(provision.LevelWarning, "undoing the %s of %s that task %d left half-done (%d steps)", j.Kind, c.Site.Domain, c.TaskID, len(j.Ops))
	for _, op := range j.Ops {
		m.u.push(m.describe(op), func(ctx context.Context) error { return m.undo(ctx, op) })
	}
	if !m.u.rollback(ctx) {
		return nil, provision.Errorf(provision.ErrCommand, "do those by hand; the journal "+j.path+" lists every step (remove it when done)",
			"some steps of the undo failed (see the log above)")
	}
	j.remove()
	if j.Backup != nil {
		return &provision.Changes{Backup: j.Backup}, nil
	}
	return nil, nil
}
