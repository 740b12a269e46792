package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision"
	_ "github.com/aegir-project/aegir/pkg/provision/tasks" // registers the back end's task types
)

// runOrQueue finishes a command that recorded task t: with queue it prints
// the task id for the dispatcher; otherwise it runs the task now with its
// log on stderr, then prints what after returns (the changed record) and
// exits with the task's result.
func (a *App) runOrQueue(t *entities.Task, queue bool, after func() (any, error)) error {
	if queue {
		return a.printQueued(t)
	}
	done, err := a.runTask(t)
	if err != nil {
		return err
	}
	if err := taskExit(done); err != nil {
		return err
	}
	if after == nil {
		return nil
	}
	v, err := after()
	if err != nil || v == nil {
		return err
	}
	return a.print(v)
}

// printQueued prints a queued task: its id alone in table format (for
// scripts: id=$(aegir site install ... --queue)), the task otherwise.
func (a *App) printQueued(t *entities.Task) error {
	if a.format == "table" && len(a.fields) == 0 {
		fmt.Fprintln(a.IO.Out, t.ID)
		a.infof("queued task %d (%s %s); run it with: aegir hosting dispatch", t.ID, t.Type, t.Target)
		return nil
	}
	return a.print(t)
}

// runner is the front end's task runner for this invocation.
func (a *App) runner() (*hosting.Runner, error) {
	st, err := a.Store()
	if err != nil {
		return nil, err
	}
	return &hosting.Runner{Store: st, Home: a.home, Pool: provision.NewPool(a.home), Settings: hosting.Settings{
		WebUser: a.cfg.GetString("web_user"), WebGroup: a.cfg.GetString("web_group"), BackupDir: filepath.Join(a.home, "backups"),
		ACME: a.acmeSettings(),
	}}, nil
}

// logWriter shows task log lines on stderr as they happen.
func (a *App) logWriter() provision.Logger {
	var mu sync.Mutex
	return provision.LoggerFunc(func(level, msg string) {
		if a.quiet || (level == provision.LevelDebug && !a.verbose) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		a.writeLogLine(a.IO.Err, entities.LogLine{Time: time.Now(), Level: level, Message: msg})
	})
}

func (a *App) writeLogLine(w io.Writer, l entities.LogLine) {
	ts := l.Time.Local().Format("15:04:05")
	for i, line := range strings.Split(strings.TrimRight(l.Message, "\n"), "\n") {
		if i == 0 {
			fmt.Fprintf(w, "%s %-7s %s\n", ts, l.Level, line)
		} else {
			fmt.Fprintf(w, "%s %-7s   %s\n", ts, l.Level, line)
		}
	}
}
