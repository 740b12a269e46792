package app

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

//go:embed php/prelude.php
var prelude []byte

// Scripts are the PHP steps of one application, embedded in the binary
// by its driver's package and run with php-cli in a docroot: FS holds
// php/NAME for each of Names, and php/Common, the code they share.
type Scripts struct {
	Type   string // the platform type they run on
	FS     fs.FS
	Common string // e.g. drupal-common.php
	Names  []string
}

// Script returns an embedded script as it runs: the shared prelude
// (input, answer and failure handling), the code the scripts of its
// application share, then the script's own code.
func (s Scripts) Script(name string) ([]byte, error) {
	if !slices.Contains(s.Names, name) {
		return nil, fmt.Errorf("no embedded PHP script %q", name)
	}
	body, err := fs.ReadFile(s.FS, "php/"+name)
	if err != nil {
		return nil, err
	}
	lib, err := fs.ReadFile(s.FS, "php/"+s.Common)
	if err != nil {
		return nil, fmt.Errorf("embedded PHP script %q has no %s", name, s.Common)
	}
	return withPrelude(lib, body), nil
}

// RunStep runs the script name for an installed site of a platform of
// the scripts' type (RunSiteStep).
func (s Scripts) RunStep(ctx context.Context, ex exec.Executor, p Platform, name string, o SiteStep, timeout time.Duration, input map[string]any, out any) error {
	if p.Type != s.Type {
		return fmt.Errorf("platform %s is %s, not %s", p.Root, p.Type, s.Type)
	}
	code, err := s.Script(name)
	if err != nil {
		return err
	}
	return RunSiteStep(ctx, ex, p, name, code, o, timeout, input, out)
}

// withPrelude puts the prelude before the code of a script (and of the
// libraries before it), each of which starts with "<?php".
func withPrelude(parts ...[]byte) []byte {
	out := append([]byte{}, prelude...)
	for _, p := range parts {
		out = append(append(out, '\n'), bytes.TrimPrefix(p, []byte("<?php\n"))...)
	}
	return out
}

// PHPError is a failure that a PHP step reported (or its crash).
type PHPError struct {
	Script  string
	Message string
	Hint    string
	Fix     []entities.Action
	// Code is the kind of failure the script named, if any:
	// "missing_extension" (PHP lacks an extension the application needs).
	Code string
}

func (e *PHPError) Error() string { return e.Script + ": " + e.Message }

// PHPRun says how to run one PHP step.
type PHPRun struct {
	Dir     string // the docroot, the script's working directory
	User    string // run as this user (the web server user); empty: aegir's
	Timeout time.Duration
	Log     Logf
	// Secrets are blanked out of the output before it is logged.
	Secrets []string
	// PHP is the php-cli command and its first arguments; empty: "php".
	PHP []string
}

// phpNameRe is a php-cli given by name, found in PATH (php, php8.2).
var phpNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// checkPHPCommand checks a php-cli command: its program is an absolute path or
// a plain name, its arguments hold no NUL or line break.
func checkPHPCommand(php []string) error {
	if len(php) == 0 {
		return nil
	}
	if !phpNameRe.MatchString(php[0]) {
		if err := entities.ValidateAbsPath("php-cli", php[0]); err != nil {
			return err
		}
	}
	for _, a := range php[1:] {
		if strings.ContainsAny(a, "\x00\n\r") {
			return fmt.Errorf("php-cli argument %q holds a NUL or a line break", a)
		}
	}
	return nil
}

// command is the command line that runs the script named name: its code
// goes on the command line (php -r; it holds no secret), its input on
// standard input, so that no file of aegir's is left on the server by a
// step that is killed. Logs and errors name the script instead of
// showing its code.
func (r PHPRun) command(name string, script, stdin []byte) exec.Command {
	php := r.PHP
	if len(php) == 0 {
		php = []string{"php"}
	}
	code := strings.TrimPrefix(string(script), "<?php")
	args := append(append([]string{}, php[1:]...), "-r", code)
	shown := exec.QuoteArgv(append(append([]string{}, php[1:]...), "-r")) + " [the code of aegir's " + name + "]"
	return exec.Command{Name: php[0], Args: args, Dir: r.Dir, User: r.User, Stdin: bytes.NewReader(stdin), Timeout: r.Timeout,
		Shown: strings.TrimSpace(shown)}
}

// RunPHP runs a PHP script (Scripts.Script) with php-cli in r.Dir, feeding it
// input as JSON on standard input, and decodes its answer into out. The
// script's code is given on the command line (php -r): no file of it is
// written on the server. What the application printed goes to the log at
// output level; the input never does.
func RunPHP(ctx context.Context, ex exec.Executor, name string, script []byte, input map[string]any, r PHPRun, out any) error {
	var nb [12]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return err
	}
	nonce := hex.EncodeToString(nb[:])
	marker := "AEGIR-" + nonce
	in := map[string]any{"marker": marker}
	for k, v := range input {
		in[k] = v
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := checkPHPCommand(r.PHP); err != nil {
		return provision.Errorf(provision.ErrInvalidContext, "give the php-cli as an absolute path or a plain name", "%s: %v", name, err)
	}
	c := r.command(name, script, stdin)
	r.Log.Printf(provision.LevelCommand, "%s (settings on standard input)", c.String())
	res, runErr := ex.Run(ctx, c)
	if s := strings.TrimSpace(string(res.Stderr)); s != "" {
		r.Log.Printf(provision.LevelOutput, "%s", redact(LastLines(withoutPages(s), 40), r.Secrets))
	}
	kind, payload, logs := findAnswer(res.Stdout, marker)
	for _, l := range logs {
		r.Log.Printf(l.level(), "%s", redact(l.Message, r.Secrets))
	}
	switch {
	case kind == "RESULT" && runErr == nil:
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(payload, out); err != nil {
			return fmt.Errorf("%s on %s: unreadable answer: %w", name, ex.Host(), err)
		}
		return nil
	case kind == "ERROR":
		var pe struct{ Message, Hint, Code string }
		if err := json.Unmarshal(payload, &pe); err != nil || pe.Message == "" {
			pe.Message = "failed with an unreadable answer"
		}
		if strings.HasSuffix(pe.Message, "before the step finished") && len(bytes.TrimSpace(res.Stderr)) > 0 {
			pe.Message += ": " + LastLines(strings.TrimSpace(string(res.Stderr)), 3)
		}
		var fix []entities.Action
		if pe.Hint == "" {
			pe.Hint, fix = PHPHint(pe.Message)
		}
		return &PHPError{Script: name, Message: redact(pe.Message, r.Secrets), Hint: pe.Hint, Fix: fix, Code: pe.Code}
	case errors.Is(runErr, exec.ErrNotFound):
		return provision.Errorf(provision.ErrMissingBinary, "install php-cli on "+ex.Host()+" (Debian: apt-get install php-cli)",
			"php-cli (%s) is not installed on %s", c.Name, ex.Host())
	case runErr != nil:
		msg := redact(runErr.Error(), r.Secrets)
		hint, fix := PHPHint(msg)
		return &PHPError{Script: name, Message: msg, Hint: hint, Fix: fix}
	}
	return &PHPError{Script: name, Message: "php exited 0 without an answer", Hint: "this is a bug in aegir; report it with the task log"}
}

// phpLog is a line a script wrote for the task log.
type phpLog struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// level is the log level of the line: info, warning or error.
func (l phpLog) level() string {
	switch l.Level {
	case provision.LevelWarning, provision.LevelError, provision.LevelDebug:
		return l.Level
	}
	return provision.LevelInfo
}

// findAnswer finds the last answer line of the script, and its lines for
// the task log.
func findAnswer(stdout []byte, marker string) (kind string, payload []byte, logs []phpLog) {
	for _, line := range bytes.Split(stdout, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(marker+"-"))
		if !ok {
			continue
		}
		k, p, ok := bytes.Cut(rest, []byte(" "))
		switch {
		case !ok:
		case string(k) == "RESULT" || string(k) == "ERROR":
			kind, payload = string(k), p
		case string(k) == "LOG":
			var l phpLog
			if json.Unmarshal(p, &l) == nil && l.Message != "" {
				logs = append(logs, l)
			}
		}
	}
	return kind, payload, logs
}

// PHPHint says what to do about a common PHP failure, and the actions
// that do it.
func PHPHint(msg string) (string, []entities.Action) {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "access denied") || strings.Contains(m, "connection refused") || strings.Contains(m, "error establishing a database connection") ||
		strings.Contains(m, "sqlstate") || strings.Contains(m, "no such host") || strings.Contains(m, "password authentication failed"):
		return "check that the database server is up and that the site's database user and password work (verifying the site writes them again)",
			[]entities.Action{entities.Do("site.verify", "DOMAIN")}
	case strings.Contains(m, "call to undefined function") && (strings.Contains(m, "mysql") || strings.Contains(m, "pg_") || strings.Contains(m, "xml") ||
		strings.Contains(m, "gd") || strings.Contains(m, "mb_")),
		strings.Contains(m, "extension") || strings.Contains(m, "could not find driver"):
		return "install the PHP extensions the application needs (Debian: apt-get install php-mysql php-pgsql php-xml php-gd php-mbstring php-curl)", nil
	case strings.Contains(m, "allowed memory size"):
		return "raise PHP's memory_limit for php-cli on the server", nil
	case strings.Contains(m, "permission denied") || strings.Contains(m, "failed to open stream"):
		return "check the owner and modes of the platform's files: the step runs as the web server user", nil
	}
	return "read the application's output in the task log, fix the cause, then retry the task",
		[]entities.Action{entities.Do("task.log", "ID"), entities.Do("task.retry", "ID")}
}

func LastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// AsTaskError makes a PHP failure a *provision.Error with code (e.g.
// provision.ErrInstall) and a message that starts with what was tried.
func AsTaskError(err error, code, what string) error {
	var pe *PHPError
	if errors.As(err, &pe) {
		if pe.Code == "missing_extension" {
			code = provision.ErrMissingBinary
		}
		return &provision.Error{Code: code, Msg: what + ": " + pe.Message, Hint: pe.Hint, Fix: pe.Fix}
	}
	var te *provision.Error
	if errors.As(err, &te) {
		return err
	}
	hint, fix := PHPHint(err.Error())
	return &provision.Error{Code: code, Msg: what, Err: err, Hint: hint, Fix: fix}
}

// redact blanks the secrets out of s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "********")
		}
	}
	return s
}
