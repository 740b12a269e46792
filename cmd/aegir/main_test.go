package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // the shared MariaDB, for the clean-up
	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite" // the sql command's driver

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/scriptenv"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"aegir": func() { os.Exit(cli.Main(os.Args[1:])) },
	})
}

// TestScript runs the end-to-end scripts in testdata/script: the real
// binary (this test binary re-run as aegir) in a fresh AEGIR_HOME each.
func TestScript(t *testing.T) {
	senv := scriptenv.New(t)
	params := testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("AEGIR_HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("NO_COLOR", "1")
			// The sites' logs and the logrotate file are the script's.
			env.Setenv("AEGIR_PHP_FPM_RUNTIME_DIR", filepath.Join(env.WorkDir, "runtime"))
			env.Setenv("AEGIR_PHP_FPM_LOGROTATE_FILE", filepath.Join(env.WorkDir, "logrotate.conf"))
			// UNIQUE tells this run's names (of sites, hence of their
			// databases on the shared MariaDB) from those of a run of the
			// same script in another checkout at the same time.
			var b [4]byte
			_, _ = rand.Read(b[:])
			unique := hex.EncodeToString(b[:])
			env.Setenv("UNIQUE", unique)
			// A script that fails before its site delete would leave its
			// databases there for good: those carrying UNIQUE go.
			env.Defer(func() { dropMariaDBNamesWith(unique) })
			// The script's own test, for the commands that start real
			// components (testenv), which stop when the script ends.
			senv.Setup(env)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// sql FILE STATEMENT: run one statement on an SQLite file
			// (the state), as the queues would have changed it.
			"sql": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: sql FILE STATEMENT")
				}
				db, err := sql.Open("sqlite", "file:"+ts.MkAbs(args[0]))
				if err != nil {
					ts.Fatalf("sql: %v", err)
				}
				defer db.Close()
				if _, err := db.Exec(args[1]); err != nil {
					ts.Fatalf("sql: %v", err)
				}
			},
			// httpd VAR PORT CONFIGDIR: answer HTTP on PORT of a loopback
			// address of its own (127.x.y.z, so that runs side by side
			// never share one), set VAR to it, until the script ends: a
			// stand-in nginx for a server whose test and reload commands
			// are stand-ins (--http-listen-ip $VAR). It answers aegir's
			// reload probe as nginx does with CONFIGDIR/generation.conf
			// (a 303 to the token it names), anything else with 200.
			"httpd": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 3 {
					ts.Fatalf("usage: httpd VAR PORT CONFIGDIR")
				}
				var b [3]byte
				_, _ = rand.Read(b[:])
				ip := net.IPv4(127, 1+b[0]%254, 1+b[1]%254, 1+b[2]%254).String()
				l, err := net.Listen("tcp", net.JoinHostPort(ip, args[1]))
				if err != nil {
					ts.Fatalf("httpd: %v", err)
				}
				gen := filepath.Join(ts.MkAbs(args[2]), "generation.conf")
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					conf, err := os.ReadFile(gen)
					loc, ok := strings.CutPrefix(strings.TrimSpace(string(conf)), "return 303 ")
					if r.URL.Path == "/.aegir-generation" && err == nil && ok {
						w.Header().Set("Location", strings.TrimSuffix(loc, "$pid;"))
						w.WriteHeader(http.StatusSeeOther)
						return
					}
					_, _ = w.Write([]byte("ok\n"))
				})}
				go func() { _ = srv.Serve(l) }()
				ts.Defer(func() { _ = srv.Close() })
				ts.Setenv(args[0], ip)
			},
			// exitcode N PROG ARGS...: run PROG and check its exit code is N.
			"exitcode": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 {
					ts.Fatalf("usage: exitcode N PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exitcode: %q is not a number", args[0])
				}
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("exitcode: %v", err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
				}
			},
		},
	}
	for name, cmd := range senv.Cmds() {
		params.Cmds[name] = cmd
	}
	testscript.Run(t, params)
}

// dropMariaDBNamesWith drops the databases and users on the shared
// MariaDB whose names hold unique (a script's UNIQUE, random hex, which
// no other run's names hold). A MariaDB that does not answer has none.
func dropMariaDBNamesWith(unique string) {
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err != nil {
		return
	}
	defer db.Close()
	like := "%" + unique + "%"
	for _, q := range []struct{ list, drop string }{
		{"SELECT CONCAT('`', SCHEMA_NAME, '`') FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", "DROP DATABASE IF EXISTS "},
		{"SELECT CONCAT('`', User, '`@`', Host, '`') FROM mysql.user WHERE User LIKE ?", "DROP USER IF EXISTS "},
	} {
		rows, err := db.Query(q.list, like)
		if err != nil {
			return
		}
		var names []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				names = append(names, n)
			}
		}
		rows.Close()
		for _, n := range names {
			_, _ = db.Exec(q.drop + n)
		}
	}
}
