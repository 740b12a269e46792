package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/store"
)

func init() {
	extraCommands = append(extraCommands, (*App).webhookCmd)
}

func (a *App) webhookCmd() *cobra.Command {
	c := &cobra.Command{Use: "webhook", Short: "Webhooks: URLs told of failed tasks, expiring certificates, stale backups, unhealthy sites"}
	c.AddCommand(newWebhookAddCmd(a, nil),
		newListCmd(a, &cobra.Command{Use: "list", Short: "List webhooks"}, runWebhookList, nil),
		newArgCmd(a, &cobra.Command{Use: "delete ID", Short: "Delete a webhook and its delivery log"}, runWebhookDelete, nil),
		newWebhookLogCmd(a, nil))
	return c
}

// WebhookAddOptions are webhook add's: the URL, the events (as given,
// each one or more names separated by commas), the client whose events
// only it gets (empty: every event), and the file with its secret (empty:
// aegir makes one and prints it once).
type WebhookAddOptions struct {
	*App
	URL        string
	Events     []string
	Client     string
	SecretFile string
}

func newWebhookAddCmd(a *App, runF func(*WebhookAddOptions) error) *cobra.Command {
	o := &WebhookAddOptions{App: a}
	cmd := bind(&cobra.Command{
		Use:   "add URL --events E,... [--client C] [--secret-file F]",
		Short: "Add a webhook: a URL that gets a signed JSON POST for each event it lists",
		Long: `Add a webhook. Each event it lists (task.failed, cert.failed, cert.expiring,
backup.stale, site.unhealthy) is POSTed to URL as JSON, signed with the
webhook's secret: X-Aegir-Signature is sha256= and the hex HMAC-SHA256 of
the X-Aegir-Timestamp header, a dot and the body (docs/webhooks.md). With
--client, only the events of that client's sites. The dispatcher sends the
deliveries (aegir hosting dispatch or queued) and tries again with backoff
when the receiver does not answer 2xx; aegir webhook log ID shows them.
Without --secret-file aegir makes a secret and prints it this once.`,
	}, o, runF, runWebhookAdd, &o.URL)
	cmd.Flags().StringSliceVar(&o.Events, "events", nil, "the events to send, comma-separated: "+strings.Join(entities.WebhookEvents, ","))
	cmd.Flags().StringVar(&o.Client, "client", "", "send only the events of this client's sites")
	cmd.Flags().StringVar(&o.SecretFile, "secret-file", "", "file holding the signing secret, mode 0600, at least 16 characters (default: a new random one, printed once)")
	return cmd
}

// webhookAdded is what webhook add prints: the webhook, and the secret
// aegir made (never one read from a file).
type webhookAdded struct {
	entities.Webhook `yaml:",inline"`
	Secret           string `json:"secret,omitempty" yaml:"secret,omitempty"`
}

func runWebhookAdd(o *WebhookAddOptions) error {
	if err := entities.ValidateWebhookURL("URL", o.URL); err != nil {
		return err
	}
	events, err := entities.ParseEvents("--events", o.Events)
	if err != nil {
		return err
	}
	if err := validNames("--client", o.Client); err != nil {
		return err
	}
	w := &entities.Webhook{URL: o.URL, Events: events, Client: o.Client}
	out := &webhookAdded{}
	if o.SecretFile != "" {
		if w.Secret, err = readSecret("--secret-file", o.SecretFile); err != nil {
			return err
		}
	} else {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		w.Secret = hex.EncodeToString(b[:])
		out.Secret = w.Secret
	}
	if err := o.checkPrint(out); err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if err := st.AddWebhook(o.ctx, w); err != nil {
		return err
	}
	out.Webhook = *w
	if out.Secret != "" {
		o.infof("the webhook's secret is printed this once: keep it where the receiver checks the signature")
	}
	return o.print(out)
}

// readSecret reads a secret from a file only its owner may read: its
// first line, at least 16 printable characters.
func readSecret(field, p string) (string, error) {
	if err := secretFile(field, p); err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", invalid(field, p, "must be a readable file on this machine")
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	s := string(bytes.TrimRight(line, "\r"))
	if len(s) < 16 {
		return "", invalid(field, p, "must hold a secret of at least 16 characters on its first line")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", invalid(field, p, "must hold a secret of printable characters on its first line")
		}
	}
	return s, nil
}

func parseWebhookID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, invalid("webhook ID", s, "must be a positive whole number (aegir webhook list shows them)")
	}
	return id, nil
}

func runWebhookList(o *ListOptions) error {
	return o.printStored(func(st *store.Store) (any, error) { return st.ListWebhooks(o.ctx) })
}

func runWebhookDelete(o *ArgOptions) error {
	id, err := parseWebhookID(o.Arg)
	if err != nil {
		return err
	}
	st, err := o.Store()
	if err != nil {
		return err
	}
	if err := st.DeleteWebhook(o.ctx, id); err != nil {
		return err
	}
	o.infof("webhook %d deleted", id)
	return nil
}

// WebhookLogOptions are webhook log's: the webhook's ID as typed and how
// many of its last deliveries to show.
type WebhookLogOptions struct {
	*App
	ID    string
	Lines int
}

func newWebhookLogCmd(a *App, runF func(*WebhookLogOptions) error) *cobra.Command {
	o := &WebhookLogOptions{App: a}
	cmd := bind(&cobra.Command{Use: "log ID", Short: "Show a webhook's deliveries, newest first: time, event, status, HTTP code, attempts, error"},
		o, runF, runWebhookLog, &o.ID)
	cmd.Flags().IntVar(&o.Lines, "lines", 50, "how many of the last deliveries to show (0: all)")
	return cmd
}

func runWebhookLog(o *WebhookLogOptions) error {
	id, err := parseWebhookID(o.ID)
	if err != nil {
		return err
	}
	if o.Lines < 0 {
		return invalid("--lines", strconv.Itoa(o.Lines), "must be 0 (all) or more")
	}
	return o.printStored(func(st *store.Store) (any, error) { return st.Deliveries(o.ctx, id, o.Lines) })
}
