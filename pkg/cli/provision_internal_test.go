package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
)

// dbJob is a nested job (version 2) for a check of the shared MariaDB at
// port: the real one at 3306, or one nobody listens on.
func dbJob(port string) string {
	return `{"version": 2, "server": "db1", "site": {"db_server": {"machine": {"name": "db1", "host": "localhost"},
 "type": "mariadb", "host": "127.0.0.1", "port": ` + port + `, "admin_user": "root"}}}`
}

// writeJob writes job into a file of the test's own and returns its path.
func writeJob(t *testing.T, job string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(p, []byte(job), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// provisionResult is what a's run of provision printed, decoded.
func provisionResult(t *testing.T, a *App) provision.Result {
	t.Helper()
	var res provision.Result
	if err := json.Unmarshal([]byte(stdout(a)), &res); err != nil {
		t.Fatalf("the result is not JSON: %v\n%s", err, stdout(a))
	}
	return res
}

// provision runs a nested job from a file, or from standard input with
// the classic short name, against the real MariaDB, and prints the
// result with what the check found: the server's kind and version.
func TestRunProvision(t *testing.T) {
	for _, c := range []struct {
		name, task, file string
	}{
		{"file", "server.verify", "file"},
		{"stdin", "verify", "-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := testApp(t)
			o := &ProvisionOptions{App: a, Task: c.task, File: c.file}
			if c.file == "-" {
				a.IO.In = strings.NewReader(dbJob("3306"))
			} else {
				o.File = writeJob(t, dbJob("3306"))
			}
			if err := runProvision(o); err != nil {
				code, errs := exitOf(a, err)
				t.Fatalf("exit %d\n%s\n%s", code, errs, stdout(a))
			}
			res := provisionResult(t, a)
			if res.Status != provision.StatusSuccess || res.ErrorCode != "" {
				t.Fatalf("status %q, error %q %q", res.Status, res.ErrorCode, res.Error)
			}
			if res.Changes == nil || len(res.Changes.Services) != 1 {
				t.Fatalf("want the state of one service, got changes %+v", res.Changes)
			}
			sv := res.Changes.Services[0]
			if sv.Kind != entities.KindDB || sv.Status != entities.StatusEnabled || !regexp.MustCompile(`^[0-9.]+-MariaDB`).MatchString(sv.Version) {
				t.Fatalf("the check found no MariaDB: %+v", sv)
			}
			if len(res.Log) == 0 {
				t.Fatal("the result has no log lines")
			}
		})
	}
}

// A server that does not answer is a failed task, exit 1, with the
// result's code and hint.
func TestRunProvisionFails(t *testing.T) {
	a := testApp(t)
	err := runProvision(&ProvisionOptions{App: a, Task: "server.verify", File: writeJob(t, dbJob("1"))})
	code, errs := exitOf(a, err)
	res := provisionResult(t, a)
	if code != ExitFailed || res.Status != provision.StatusError || res.ErrorCode != provision.ErrUnreachable || res.Hint == "" {
		t.Fatalf("exit %d, result %+v\n%s", code, res, errs)
	}
	if !strings.HasPrefix(errs, "error: server.verify: ") {
		t.Fatalf("stderr: %s", errs)
	}
}

// A job that is not one to run is refused, exit 2, with one line that
// names --context-file and says what is wrong; nothing runs and nothing
// is printed.
func TestRunProvisionRefuses(t *testing.T) {
	a := testApp(t)
	for _, c := range []struct{ file, job, want string }{
		{"", "", "invalid --context-file: is required"},
		{filepath.Join(t.TempDir(), "none.json"), "", `invalid --context-file "`},
		// The flat form of version 1 says what changed.
		{"f", `{"server": "db1", "db_server": "db1", "db_type": "mariadb"}`,
			`key "db_server" is of the flat form of version 1, which is no longer read: since version 2 a job nests its keys`},
		{"f", `{"server": "db1"}`, `key "version" is missing: give "version": 2`},
		{"f", `{"version": 1, "server": "db1"}`, `"version" is 1: this aegir reads version 2`},
		{"f", `{"version": 2, "server": "db1", "site": {"db_server": {"tpye": "mariadb"}}}`, `unknown field "tpye"`},
		{"f", dbJob("3306") + ` {}`, "data after the JSON object"},
	} {
		file := c.file
		if file == "f" {
			file = writeJob(t, c.job)
		}
		a.IO.Out.(interface{ Reset() }).Reset()
		refused(t, a, c.want, func() error { return runProvision(&ProvisionOptions{App: a, Task: "server.verify", File: file}) })
		if out := stdout(a); out != "" {
			t.Fatalf("%s: a refused job printed %q", c.want, out)
		}
	}
}

// An unknown task type is refused by the back end: exit 2, a result
// with invalid_context that names the type, and nothing ran.
func TestRunProvisionUnknownTask(t *testing.T) {
	a := testApp(t)
	err := runProvision(&ProvisionOptions{App: a, Task: "no.such", File: writeJob(t, dbJob("3306"))})
	code, errs := exitOf(a, err)
	res := provisionResult(t, a)
	if code != ExitUsage || res.ErrorCode != provision.ErrInvalidContext || !strings.Contains(res.Error, `unknown task type "no.such"`) {
		t.Fatalf("exit %d, result %+v\n%s", code, res, errs)
	}
	if !strings.HasPrefix(errs, `error: no.such: unknown task type "no.such"`) {
		t.Fatalf("stderr: %s", errs)
	}
	if res.Changes != nil {
		t.Fatalf("an unknown task ran: changes %+v", res.Changes)
	}
}

// provision takes the task and --context-file; a short name becomes a
// type by the job's target.
func TestProvisionParse(t *testing.T) {
	a := testApp(t)
	var o *ProvisionOptions
	parse(t, newProvisionCmd(a, kept(&o)), "site.verify", "--context-file", "-")
	if o.Task != "site.verify" || o.File != "-" {
		t.Fatalf("parsed: %+v", o)
	}
	for _, c := range []struct {
		job  provision.Job
		want string
	}{
		{provision.Job{}, "server.verify"},
		{provision.Job{Site: provision.SiteSpec{Domain: "a.test"}}, "site.verify"},
		{provision.Job{Site: provision.SiteSpec{Platform: provision.PlatformSpec{Name: "wp"}}}, "platform.verify"},
	} {
		if got := taskName("verify", &c.job); got != c.want {
			t.Errorf("taskName(verify, %+v) = %q, want %q", c.job, got, c.want)
		}
	}
	if got := taskName("site.delete", &provision.Job{}); got != "site.delete" {
		t.Errorf("a task type is kept as it is: got %q", got)
	}
}
