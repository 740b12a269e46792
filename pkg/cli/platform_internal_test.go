package cli

import (
	"path/filepath"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
)

// platform add refuses what cannot be a platform, naming the flag, and
// records nothing; a good one is recorded with its verify task queued.
func TestRunPlatformAdd(t *testing.T) {
	a := testApp(t)
	if _, err := a.st.AddServer(a.ctx, &entities.Server{Name: "web1", Host: "localhost", SSHPort: 22,
		Services: []entities.Service{{Kind: entities.KindHTTP, Type: entities.TypeNginx, Port: 80, HTTPSPort: 443}}}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	for _, c := range []struct {
		want string
		o    PlatformAddOptions
	}{
		{`invalid platform name "../wp"`, PlatformAddOptions{Name: "../wp", Server: "web1", Root: "/var/www/wp"}},
		{`invalid --server: is required`, PlatformAddOptions{Name: "wp", Root: "/var/www/wp"}},
		{`invalid --root "var/www/wp"`, PlatformAddOptions{Name: "wp", Server: "web1", Root: "var/www/wp"}},
		{`invalid --type "joomla"`, PlatformAddOptions{Name: "wp", Server: "web1", Root: "/var/www/wp", Type: "joomla"}},
		{`invalid --drush "drush"`, PlatformAddOptions{Name: "wp", Server: "web1", Root: "/var/www/wp", Drush: "drush"}},
		{`invalid --push-from "` + file + `": must be a directory on this machine`, PlatformAddOptions{Name: "wp", Server: "web1", Root: "/var/www/wp", PushFrom: file}},
	} {
		o := c.o
		o.App = a
		refused(t, a, c.want, func() error { return runPlatformAdd(&o) })
	}
	if err := runPlatformAdd(&PlatformAddOptions{App: a, Name: "wp", Server: "web1", Root: "/var/www/wp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	p, err := a.st.GetPlatform(a.ctx, "wp")
	if err != nil || p.Root != "/var/www/wp" {
		t.Fatalf("recorded platform: %+v, %v", p, err)
	}
	if out := stdout(a); out == "" {
		t.Fatal("platform add --queue printed no task id")
	}
}
