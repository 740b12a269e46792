package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// server add and edit hand run the flags given, by name, and their
// values; the defaults of those not given are there too.
func TestServerCmdParse(t *testing.T) {
	a := testApp(t)
	var got *ServerOptions
	keep := kept(&got)
	parse(t, newServerAddCmd(a, keep), "db1", "--host", "db.test", "--ssh-user", "aegir", "--db", "postgresql", "--db-port", "5433", "--queue")
	f := got.Flags
	if got.Name != "db1" || f.host != "db.test" || f.sshUser != "aegir" || f.db != "postgresql" || f.dbPort != 5433 || !f.queue || f.sshPort != 22 || f.httpPort != 80 {
		t.Fatalf("parsed: %+v", got)
	}
	for _, n := range []string{"host", "ssh-user", "db", "db-port", "queue"} {
		if !got.Set[n] {
			t.Errorf("--%s given but not in Set %v", n, got.Set)
		}
	}
	if got.Set["ssh-port"] || got.Set["http"] {
		t.Errorf("flags not given are in Set: %v", got.Set)
	}
	parse(t, newServerEditCmd(a, keep), "db1", "--http-test-cmd", "")
	if !got.Set["http-test-cmd"] || got.Flags.httpTestCmd != "" || len(got.Set) != 1 {
		t.Fatalf("edit --http-test-cmd '': %+v", got)
	}
}

// server add refuses settings that cannot work, naming the flag, before
// anything is recorded: no server, no verify task.
func TestRunServerAddRefuses(t *testing.T) {
	a := testApp(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		want string
		name string
		f    serverFlags
		set  []string
	}{
		{`invalid server name "web 1"`, "web 1", serverFlags{host: "localhost"}, []string{"host"}},
		{`invalid --host: is required`, "web1", serverFlags{}, nil},
		{`invalid --http-port: needs a web service`, "web1", serverFlags{host: "localhost", httpPort: 8080}, []string{"host", "http-port"}},
		{`invalid --https-port "8080": must differ from --http-port`, "web1",
			serverFlags{host: "localhost", http: "nginx", httpPort: 8080, httpsPort: 8080}, []string{"host", "http", "http-port", "https-port"}},
		{`invalid --http "lighttpd"`, "web1", serverFlags{host: "localhost", http: "lighttpd", httpPort: 80, httpsPort: 443}, []string{"host", "http"}},
		{`invalid --db-tunnel: needs a remote server`, "db1", serverFlags{host: "localhost", db: "mariadb", dbTunnel: true}, []string{"host", "db", "db-tunnel"}},
		{`invalid --db-admin-password-file "` + pw + `": must be readable by its owner only`, "db1",
			serverFlags{host: "localhost", db: "mariadb", dbAdminPasswordFile: pw}, []string{"host", "db", "db-admin-password-file"}},
	} {
		set := map[string]bool{}
		for _, n := range c.set {
			set[n] = true
		}
		f := c.f // with the flags' defaults, as parsing gives them
		f.sshPort = 22
		if f.httpPort == 0 {
			f.httpPort, f.httpsPort = 80, 443
		}
		refused(t, a, c.want, func() error {
			return runServerAdd(&ServerOptions{App: a, Name: c.name, Flags: f, Set: set})
		})
	}
}
