package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// failing logs 30 lines and fails with a hint.
func failing(_ context.Context, t *entities.Task, log func(string, string, ...entities.Action)) Outcome {
	for i := 1; i <= 30; i++ {
		log("info", fmt.Sprintf("step %d", i))
	}
	return Outcome{Status: entities.TaskError, Error: "mysql: access denied for aegir_root", Hint: "check the admin password file", Code: "database"}
}

// A failed task runs the notify command with the failure as JSON on stdin
// and the AEGIR_TASK_* environment; a task that succeeds does not.
func TestNotifyCommand(t *testing.T) {
	st, _ := newStore(t)
	dir := t.TempDir()
	in, env := filepath.Join(dir, "stdin.json"), filepath.Join(dir, "env")
	script := `cat > "$1"; printf '%s|%s|%s|%s|%s|%s\n' "$AEGIR_TASK_ID" "$AEGIR_TASK_TYPE" "$AEGIR_TASK_TARGET" "$AEGIR_TASK_STATUS" "$AEGIR_TASK_ERROR_CODE" "$AEGIR_TASK_HINT" >> "$2"`
	ok := queueTask(t, st, entities.TaskSiteVerify, entities.TargetSite, 1)
	bad := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 2)
	d := &Dispatcher{Store: st, Notify: &CommandNotifier{Argv: []string{"/bin/sh", "-c", script, "notify", in, env}},
		Handler: func(ctx context.Context, task *entities.Task, log func(string, string, ...entities.Action)) Outcome {
			if task.ID == ok.ID {
				return Outcome{}
			}
			return failing(ctx, task, log)
		}}
	if _, err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatalf("the notify command did not run: %v", err)
	}
	if want := fmt.Sprintf("%d|site.install|site-2|error|database|check the admin password file\n", bad.ID); string(b) != want {
		t.Fatalf("env seen by the command:\n%s\nwant\n%s", b, want)
	}
	var f struct {
		ID        int64              `json:"id"`
		Type      string             `json:"type"`
		Target    string             `json:"target"`
		Status    string             `json:"status"`
		Error     string             `json:"error"`
		Hint      string             `json:"hint"`
		ErrorCode string             `json:"error_code"`
		Host      string             `json:"host"`
		Finished  *time.Time         `json:"finished"`
		LogTail   []entities.LogLine `json:"log_tail"`
	}
	b, _ = os.ReadFile(in)
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("stdin is not JSON: %v\n%s", err, b)
	}
	if f.ID != bad.ID || f.Status != "error" || f.Error != "mysql: access denied for aegir_root" || f.ErrorCode != "database" || f.Hint == "" || f.Host == "" || f.Finished == nil {
		t.Fatalf("failure JSON: %s", b)
	}
	if len(f.LogTail) != LogTailLines || f.LogTail[0].Message != "step 11" || f.LogTail[19].Message != "step 30" {
		t.Fatalf("log tail: %+v", f.LogTail)
	}
}

// A notify command that fails leaves a warning in the task's log.
func TestNotifyCommandFailureIsLogged(t *testing.T) {
	st, _ := newStore(t)
	task := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	d := &Dispatcher{Store: st, Handler: failing, Notify: &CommandNotifier{Argv: []string{"/bin/sh", "-c", "echo mail queue full >&2; exit 3"}}}
	if _, err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := taskLog(t, st, task.ID)
	last := lines[len(lines)-1]
	if last.Level != "warning" || !strings.Contains(last.Message, "exit status 3") || !strings.Contains(last.Message, "mail queue full") {
		t.Fatalf("last log line %+v", last)
	}
}

// smtpPeer is a minimal SMTP server on 127.0.0.1 that accepts one message.
type smtpPeer struct {
	addr string
	got  chan smtpMessage
}

type smtpMessage struct {
	from string
	to   []string
	data string
}

func startSMTP(t *testing.T) *smtpPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &smtpPeer{addr: l.Addr().String(), got: make(chan smtpMessage, 1)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		say := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
		say("220 test ESMTP")
		var m smtpMessage
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.TrimRight(line, "\r\n")
			switch up := strings.ToUpper(cmd); {
			case strings.HasPrefix(up, "EHLO"), strings.HasPrefix(up, "HELO"):
				say("250-test greets you")
				say("250 8BITMIME")
			case strings.HasPrefix(up, "MAIL FROM:"):
				m.from = strings.Trim(cmd[len("MAIL FROM:"):], "<> ")
				if i := strings.Index(m.from, ">"); i >= 0 {
					m.from = m.from[:i]
				}
				say("250 ok")
			case strings.HasPrefix(up, "RCPT TO:"):
				m.to = append(m.to, strings.Trim(cmd[len("RCPT TO:"):], "<> "))
				say("250 ok")
			case up == "DATA":
				say("354 go on")
				var b strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					b.WriteString(l)
				}
				m.data = b.String()
				say("250 queued")
			case up == "QUIT":
				say("221 bye")
				p.got <- m
				return
			default:
				say("502 not implemented")
			}
		}
	}()
	return p
}

// A failed task is mailed: sender, recipients, subject, error, hint and the
// end of the log.
func TestNotifyMail(t *testing.T) {
	st, _ := newStore(t)
	peer := startSMTP(t)
	task := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	d := &Dispatcher{Store: st, Handler: failing, Notify: Notifiers{&MailNotifier{
		Addr: peer.addr, From: "aegir@example.org", To: []string{"ops@example.org", "oncall@example.org"}, Timeout: 5 * time.Second,
	}}}
	if _, err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var m smtpMessage
	select {
	case m = <-peer.got:
	case <-time.After(5 * time.Second):
		t.Fatalf("no mail arrived; task log: %+v", taskLog(t, st, task.ID))
	}
	if m.from != "aegir@example.org" || len(m.to) != 2 || m.to[1] != "oncall@example.org" {
		t.Fatalf("envelope from %q to %v", m.from, m.to)
	}
	for _, want := range []string{
		fmt.Sprintf("Subject: [aegir] task %d failed: site.install site-1", task.ID),
		"To: ops@example.org, oncall@example.org",
		"Error: mysql: access denied for aegir_root",
		"What to do: check the admin password file",
		"The last 20 log lines:",
		"step 30\r\n",
		fmt.Sprintf("The whole log: task.log %d\r\n", task.ID),
		fmt.Sprintf("Run it again: task.retry %d\r\n", task.ID),
	} {
		if !strings.Contains(m.data, want) {
			t.Fatalf("mail lacks %q:\n%s", want, m.data)
		}
	}
	if strings.Contains(m.data, "step 10\r\n") {
		t.Fatalf("mail carries more than the log tail:\n%s", m.data)
	}
}

// An unreachable mail server is reported in the task's log, and the
// dispatch goes on.
func TestNotifyMailUnreachable(t *testing.T) {
	st, _ := newStore(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	task := queueTask(t, st, entities.TaskSiteInstall, entities.TargetSite, 1)
	d := &Dispatcher{Store: st, Handler: failing, Notify: &MailNotifier{Addr: addr, From: "a@example.org", To: []string{"b@example.org"}, Timeout: 2 * time.Second}}
	if _, err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := taskLog(t, st, task.ID)
	if last := lines[len(lines)-1]; last.Level != "warning" || !strings.Contains(last.Message, "notify mail via "+addr) {
		t.Fatalf("last log line %+v", last)
	}
}
