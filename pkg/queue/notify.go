package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// LogTailLines is how many of the last log lines a failure notice carries.
const LogTailLines = 20

// DefaultNotifyTimeout bounds one notification (command or mail).
const DefaultNotifyTimeout = 30 * time.Second

// Failure is what a notification says about a task that ended in error.
// Its JSON (the task's keys, error_code, host and log_tail) is what a
// notify command reads on stdin.
type Failure struct {
	*entities.Task
	ErrorCode string             `json:"error_code"`
	Host      string             `json:"host"`
	LogTail   []entities.LogLine `json:"log_tail"`
	// Word, if set, words an action as the front end's command; else a
	// notice names it in the model's terms (task.log 12).
	Word func(entities.Action) string `json:"-"`
}

// word is a as f's front end words it.
func (f *Failure) word(a entities.Action) string {
	if f.Word != nil {
		return f.Word(a)
	}
	s := a.Verb + " " + a.Target
	for _, arg := range a.Args {
		s += " " + arg.Name
		if arg.Value != "" {
			s += "=" + arg.Value
		}
	}
	return strings.TrimSpace(s)
}

// Notifier tells the administrator that a task failed.
type Notifier interface {
	Notify(ctx context.Context, f *Failure) error
}

// Notifiers tells each in turn; it fails if any failed.
type Notifiers []Notifier

// Notify calls every notifier.
func (ns Notifiers) Notify(ctx context.Context, f *Failure) error {
	var errs []error
	for _, n := range ns {
		errs = append(errs, n.Notify(ctx, f))
	}
	return errors.Join(errs...)
}

// notifyFailure tells the webhooks (task.failed: a delivery queued) and
// d.Notify about task id, which ended in error. A notification that fails
// leaves a warning in the task's log.
func (d *Dispatcher) notifyFailure(ctx context.Context, id int64, code string) {
	t, err := d.Store.GetTask(ctx, id)
	if err != nil {
		d.logf("queue: task %d: reading it for the failure notice: %v", id, err)
		return
	}
	d.taskFailed(ctx, t, code)
	if d.Notify == nil {
		return
	}
	tail, err := d.Store.TaskLogTail(ctx, id, LogTailLines)
	if err != nil {
		d.logf("queue: task %d: reading its log for the failure notice: %v", id, err)
	}
	host := Master()
	if err := d.Notify.Notify(ctx, &Failure{Task: t, ErrorCode: code, Host: host, LogTail: tail}); err != nil {
		d.logf("queue: task %d: failure notification: %v", id, err)
		_ = d.Store.AppendLog(ctx, id, entities.LogLine{Time: d.now(), Level: entities.LevelWarning, Message: "the failure notification could not be sent: " + err.Error()})
	}
}

// CommandNotifier runs a command for each failed task: the Failure as JSON
// on stdin, and AEGIR_TASK_ID, AEGIR_TASK_TYPE, AEGIR_TASK_TARGET,
// AEGIR_TASK_TARGET_KIND, AEGIR_TASK_STATUS, AEGIR_TASK_ERROR,
// AEGIR_TASK_ERROR_CODE and AEGIR_TASK_HINT in its environment. Argv is run
// as is, without a shell.
type CommandNotifier struct {
	Argv    []string
	Timeout time.Duration // default DefaultNotifyTimeout
}

// Notify runs the command; a non-zero exit is an error that quotes the
// start of its output.
func (c *CommandNotifier) Notify(ctx context.Context, f *Failure) error {
	if len(c.Argv) == 0 {
		return errors.New("notify command: empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(c.Timeout))
	defer cancel()
	in, err := json.Marshal(f)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(),
		"AEGIR_TASK_ID="+strconv.FormatInt(f.ID, 10),
		"AEGIR_TASK_TYPE="+f.Type,
		"AEGIR_TASK_TARGET="+f.Target,
		"AEGIR_TASK_TARGET_KIND="+f.TargetKind,
		"AEGIR_TASK_STATUS="+f.Status,
		"AEGIR_TASK_ERROR="+f.Error,
		"AEGIR_TASK_ERROR_CODE="+f.ErrorCode,
		"AEGIR_TASK_HINT="+f.Hint,
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", timeoutOr(c.Timeout))
		}
		if msg != "" {
			return fmt.Errorf("notify command %s: %w: %s", c.Argv[0], err, msg)
		}
		return fmt.Errorf("notify command %s: %w", c.Argv[0], err)
	}
	return nil
}

// MailNotifier mails each failed task through an SMTP server (net/smtp).
// STARTTLS is used when the server offers it, except on loopback (a local
// MTA's self-signed certificate would fail the check for no gain).
type MailNotifier struct {
	Addr    string   // host:port of the SMTP server
	From    string   // envelope and header sender
	To      []string // recipients
	Auth    smtp.Auth
	Timeout time.Duration // default DefaultNotifyTimeout
}

// Notify sends the mail.
func (m *MailNotifier) Notify(ctx context.Context, f *Failure) error {
	if m.From == "" || len(m.To) == 0 {
		return errors.New("notify mail: sender and recipients are required (notify.email.from, notify.email.to)")
	}
	for _, a := range append([]string{m.From}, m.To...) {
		if strings.ContainsAny(a, "\r\n<>") {
			return fmt.Errorf("notify mail: invalid address %q", a)
		}
	}
	if err := m.send(ctx, m.message(f)); err != nil {
		return fmt.Errorf("notify mail via %s: %w", m.Addr, err)
	}
	return nil
}

func (m *MailNotifier) send(ctx context.Context, msg []byte) error {
	timeout := timeoutOr(m.Timeout)
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return err
	}
	conn, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if me, err := os.Hostname(); err == nil && me != "" {
		if err := c.Hello(me); err != nil {
			return err
		}
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !isLoopback(host) {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if m.Auth != nil {
		if err := c.Auth(m.Auth); err != nil {
			return err
		}
	}
	if err := c.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(msg); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message renders the mail: headers, then what failed, what to do and the
// end of the log.
func (m *MailNotifier) message(f *Failure) []byte {
	var b bytes.Buffer
	subject := fmt.Sprintf("[aegir] task %d failed: %s %s", f.ID, f.Type, f.Target)
	if f.Host != "" {
		subject += " on " + f.Host
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := f.Host
	if domain == "" {
		domain = "localhost"
	}
	for _, h := range [][2]string{
		{"From", m.From},
		{"To", strings.Join(m.To, ", ")},
		{"Subject", subject},
		{"Date", time.Now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "8bit"},
		{"Auto-Submitted", "auto-generated"},
	} {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], headerValue(h[1]))
	}
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Task %d (%s on %s %s) ended in error", f.ID, f.Type, f.TargetKind, f.Target)
	if f.Finished != nil {
		fmt.Fprintf(&b, " at %s", f.Finished.Local().Format(time.RFC3339))
	}
	b.WriteString(".\r\n\r\n")
	fmt.Fprintf(&b, "Error: %s\r\n", f.Error)
	if f.ErrorCode != "" {
		fmt.Fprintf(&b, "Code: %s\r\n", f.ErrorCode)
	}
	if f.Hint != "" {
		fmt.Fprintf(&b, "What to do: %s\r\n", f.Hint)
	}
	if len(f.LogTail) > 0 {
		fmt.Fprintf(&b, "\r\nThe last %d log lines:\r\n", len(f.LogTail))
		for _, l := range f.LogTail {
			for _, line := range strings.Split(strings.TrimRight(l.Message, "\n"), "\n") {
				fmt.Fprintf(&b, "%s %-7s %s\r\n", l.Time.Local().Format("15:04:05"), l.Level, strings.TrimRight(line, "\r"))
			}
		}
	}
	tid := strconv.FormatInt(f.ID, 10)
	fmt.Fprintf(&b, "\r\nThe whole log: %s\r\nRun it again: %s\r\n", f.word(entities.Do("task.log", tid)), f.word(entities.Do("task.retry", tid)))
	return b.Bytes()
}

// headerValue keeps a value on one header line.
func headerValue(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultNotifyTimeout
	}
	return d
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
