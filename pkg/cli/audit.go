package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	extraCommands = append(extraCommands, (*App).auditCmd)
}

func (a *App) auditCmd() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "The audit log of the HTTP API and the dashboard (aegir serve): every request, who made it, what it queued"}
	c.AddCommand(newAuditListCmd(a, nil))
	return c
}

// AuditListOptions are audit list's: the user, how far back (as typed:
// 24h, 7d, a date or a time), the status (401, 4xx) and how many.
type AuditListOptions struct {
	*App
	User, Since, Status string
	Lines               int
}

func newAuditListCmd(a *App, runF func(*AuditListOptions) error) *cobra.Command {
	o := &AuditListOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "list [--user U] [--since D] [--status N|Nxx] [--lines N]",
		Short: "List the audit log's entries, newest first",
		Long: `List the audit log of aegir serve, newest first: every request to the HTTP API
and the dashboard, refused or not, with its time, the user and token that
made it (empty: no valid token), the address it came from, its method and
path (never its query, headers or form), the HTTP status answered and the
task it queued (0: none).

--since takes how far back (30m, 12h, 7d), a date (2027-01-02, from its
start in UTC) or a time (RFC 3339). --status takes a status (401) or a
class (4xx).`,
	}, o, runF, runAuditList)
	f := cmd.Flags()
	f.StringVar(&o.User, "user", "", "only this user's requests (a deleted user's too)")
	f.StringVar(&o.Since, "since", "", "only requests since then: 30m, 12h, 7d, a date (2027-01-02) or a time (RFC 3339)")
	f.StringVar(&o.Status, "status", "", "only requests answered with this HTTP status (401) or class (4xx)")
	intFlag(f, &o.Lines, "lines", 100, "how many of the newest entries to show (0: all)")
	return cmd
}

// parseSince reads a point in time for --since: an age back from now
// (Nd, or a Go duration such as 12h), a date (its start, UTC) or an
// RFC 3339 time.
func parseSince(field, s string, now time.Time) (time.Time, error) {
	const rule = "must be how far back (30m, 12h, 7d), a date (2027-01-02) or a time (2027-01-02T15:04:05Z)"
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return time.Time{}, invalid(field, s, rule)
		}
		return now.Add(-time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, invalid(field, s, rule)
	}
	return now.Add(-d), nil
}

// parseStatus reads --status: an HTTP status (401) or a class (4xx), as
// the range it picks.
func parseStatus(field, s string) (lo, hi int, err error) {
	const rule = "must be an HTTP status (401) or a class of them (4xx)"
	if c, ok := strings.CutSuffix(strings.ToLower(s), "xx"); ok {
		n, err := strconv.Atoi(c)
		if err != nil || len(c) != 1 || n < 1 || n > 5 {
			return 0, 0, invalid(field, s, rule)
		}
		return n * 100, n*100 + 99, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, 0, invalid(field, s, rule)
	}
	return n, n, nil
}

func runAuditList(o *AuditListOptions) error {
	f := store.AuditFilter{User: o.User, Limit: o.Lines}
	if o.User != "" {
		if err := validNames("--user", o.User); err != nil {
			return err
		}
	}
	if o.Since != "" {
		t, err := parseSince("--since", o.Since, time.Now())
		if err != nil {
			return err
		}
		f.Since = t
	}
	if o.Status != "" {
		lo, hi, err := parseStatus("--status", o.Status)
		if err != nil {
			return err
		}
		f.Status, f.StatusMax = lo, hi
	}
	if o.Lines < 0 {
		return invalid("--lines", strconv.Itoa(o.Lines), "must be 0 (all) or more")
	}
	return o.printStored(func(st *store.Store) (any, error) { return st.ListAudit(o.ctx, f) })
}
