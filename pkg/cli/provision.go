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

func (a *App) provisionCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
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

Task types: `,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return invalid("--context-file", "", "is required: a JSON file, or - for standard input")
			}
			var r io.Reader = a.IO.In
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return invalid("--context-file", file, "must be a readable file")
				}
				defer f.Close()
				r = f
			}
			c, err := provision.DecodeJob(r)
			if err != nil {
				return usageErr(fmt.Errorf("invalid --context-file: %w", err))
			}
			c.Task = taskName(args[0], c)
			res := engine.Run(a.ctx, a.home, c, nil, nil)
			if err := output.WriteJSON(a.IO.Out, res); err != nil {
				return err
			}
			if res.Status == provision.StatusError {
				code := ExitFailed
				if res.ErrorCode == provision.ErrInvalidContext {
					code = ExitUsage // the context is bad input: nothing ran
				}
				return &Error{Code: code, Err: fmt.Errorf("%s: %s", c.Task, res.Error), Hint: res.Hint}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "context-file", "", "the JSON job: a file, or - for standard input")
	cmd.Long += strings.Join(engine.Tasks(), ", ") + "."
	return cmd
}

// taskName turns a classic short name (verify) into a task type by the
// job's target: a site, else a platform, else a server.
func taskName(name string, c *provision.Job) string {
	if strings.Contains(name, ".") {
		return name
	}
	switch {
	case c.Site.Domain != "":
		return "site." + name
	case c.Site.Platform.Name != "":
		return "platform." + name
	}
	return "server." + name
}
