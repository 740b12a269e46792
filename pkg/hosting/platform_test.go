package hosting_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/store"
)

// A platform verify saves what it found in the tree: the application, its
// core version (WordPress's own, from wp-includes/version.php) and the
// themes and plugins it ships.
func TestPlatformVerifySavesCoreAndPackages(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	p := h.wpPlatform(t, "wp")
	if p.CoreVersion != "" {
		t.Fatalf("a platform not yet verified has core version %q", p.CoreVersion)
	}
	b, err := os.ReadFile(filepath.Join(p.Root, "wp-includes", "version.php"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\$wp_version = '([^']+)'`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no $wp_version in the platform's version.php")
	}
	task, err := h.st.QueuePlatformTask(h.ctx, p, entities.TaskPlatformVerify, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.run(t, task, provision.StatusSuccess)

	p = h.platform(t, "wp")
	if p.Type != "wordpress" || p.CoreVersion != string(m[1]) {
		t.Errorf("platform after verify: type %q core %q, want wordpress %s", p.Type, p.CoreVersion, m[1])
	}
	pkgs, err := h.st.ListPackages(h.ctx, store.PackageFilter{PlatformID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, pk := range pkgs {
		have[pk.Type+"/"+pk.Name] = pk.Version
	}
	for _, want := range []string{"theme/twentytwentythree", "plugin/akismet"} {
		if have[want] == "" {
			t.Errorf("platform packages after verify lack %s (with its version): %v", want, have)
		}
	}
}

// A task whose target is gone from the store by the time it runs is
// refused as an invalid context, with the command that shows the target.
func TestTaskOfAVanishedTargetIsRefused(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	task, err := h.st.QueueTask(h.ctx, entities.TaskSiteVerify, entities.TargetSite, 987654, "gone.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := h.run(t, task, provision.StatusError)
	if o.Code != provision.ErrInvalidContext || o.Hint == "" || len(o.Fix) != 1 || o.Fix[0].Verb != "site.show" || o.Fix[0].Target != "gone.test" {
		t.Errorf("task of a vanished site: code %q hint %q fix %+v; want %s and a fix that shows gone.test", o.Code, o.Hint, o.Fix, provision.ErrInvalidContext)
	}
}

// A database admin password file that its group or others may read is
// refused at each use, with the chmod that fixes it; nothing is saved of
// the verify.
func TestDBAdminPasswordFileReadableByOthersIsRefused(t *testing.T) {
	t.Parallel()
	h := newHostEnv(t)
	pwFile := filepath.Join(t.TempDir(), "db-admin-password")
	if err := os.WriteFile(pwFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.editService(t, entities.KindDB, func(sv *entities.Service) { sv.AdminPasswordFile = pwFile })
	s := h.server(t, "web1")
	// Made readable after the server's edit checked it.
	if err := os.Chmod(pwFile, 0o644); err != nil {
		t.Fatal(err)
	}
	task, err := h.st.QueueTask(h.ctx, entities.TaskServerVerify, entities.TargetServer, s.ID, s.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := h.run(t, task, provision.StatusError)
	if o.Code != provision.ErrInvalidContext || o.Hint != "chmod 600 "+pwFile {
		t.Errorf("password file of mode 0644: code %q hint %q; want %s and chmod 600 %s", o.Code, o.Hint, provision.ErrInvalidContext, pwFile)
	}
	if !strings.Contains(o.Error, "0644") {
		t.Errorf("the refusal does not say the mode: %s", o.Error)
	}
	for _, sv := range h.server(t, "web1").Services {
		if sv.Version != "" {
			t.Errorf("the refused verify saved the %s service's version %q", sv.Kind, sv.Version)
		}
	}
}
