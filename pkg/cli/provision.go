package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/cli/output"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
)

// ProvisionOptions are provision's: the task as typed (a type such as
// site.verify, or a classic short name) and the job's file (- for
// standard input).
type ProvisionOptions struct {
	*App
	Task string
	File string
}

func (a *App) provisionCmd() *cobra.Command { return newProvisionCmd(a, nil) }

func newProvisionCmd(a *App, runF func(*ProvisionOptions) error) *cobra.Command {
	o := &ProvisionOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "provision TASK --context-file F|-",
		Short: "Run the back end alone: a JSON job in, a JSON result out",
		Long: `Run one back-end task from a JSON job (what the front end would pass:
the task's site, platform and servers, nested, with "version": 2; see
docs/json.md) and print the JSON result: status, log lines, changes for the
front end, and on failure an error code, message and hint. TASK is a task
type such as site.verify; the classic short form (verify, install) is taken
from the job's target. The exit code is 1 when the result is an error,
2 when the job is invalid (error_code invalid_context: nothing ran), as
it is for a file that holds anything after its one JSON object.

Task types: ` + strings.Join(engine.Tasks(), ", ") + ".",
	}, o, runF, runProvision, &o.Task)
	cmd.Flags().StringVar(&o.File, "context-file", "", "the JSON job: a file, or - for standard input")
	return cmd
}

func runProvision(o *ProvisionOptions) error {
	if o.File == "" {
		return invalid("--context-file", "", "is required: a JSON file, or - for standard input")
	}
	var r io.Reader = o.IO.In
	if o.File != "-" {
		f, err := os.Open(o.File)
		if err != nil {
			return invalid("--context-file", o.File, "must be a readable file")
		}
		defer f.Close()
		r = f
	}
	job, err := provision.DecodeJob(r)
	if err != nil {
		return usageErr(fmt.Errorf("invalid --context-file: %w", err))
	}
	job.Task = taskName(o.Task, job)
	res := engine.Run(o.ctx, o.home, job, nil, nil)
	if err := output.WriteJSON(o.IO.Out, res); err != nil {
		return err
	}
	if res.Status == provision.StatusError {
		code := ExitFailed
		if res.ErrorCode == provision.ErrInvalidContext {
			code = ExitUsage // the job is bad input: nothing ran
		}
		return &Error{Code: code, Err: fmt.Errorf("%s: %s", job.Task, res.Error), Hint: res.Hint, Fix: res.Fix}
	}
	return nil
}

// taskName turns a classic short name (verify) into a task type by the
// job's target: a site, else a platform, else a server.
func taskName(name string, job *provision.Job) string {
	if strings.Contains(name, ".") {
		return name
	}
	switch {
	case job.Site.Domain != "":
		return "site." + name
	case job.Site.Platform.Name != "":
		return "platform." + name
	}
	return "server." + name
}
