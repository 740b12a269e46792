package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unknown aegir.yaml key a letter or two off a known one is an error
// (exit 2) that names the key, the file and the key meant, and the
// command does nothing (no state made at the default path); other unknown
// keys stay warnings.
func TestConfigKeyTypo(t *testing.T) {
	for _, c := range []struct{ config, key, want string }{
		{"stat: postgres://aegir@db1/aegir\n", "stat", "state"},
		{"mastr: m1\n", "mastr", "master"},
		{"state_pasword_file: /root/pw\n", "state_pasword_file", "state_password_file"},
		{"queue:\n  cron:\n    enable: false\n", "queue.cron.enable", "queue.cron.enabled"},
	} {
		home := filepath.Join(t.TempDir(), "h")
		writeConfig(t, home, c.config)
		cfg := filepath.Join(home, "aegir.yaml")
		want := `error: unknown key "` + c.key + `" in ` + cfg + `: did you mean "` + c.want + `"?`
		if _, errs, code := aegir(t, home, "client", "list"); code != 2 || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, %s", c.key, code, errs)
		}
		if _, err := os.Stat(filepath.Join(home, "aegir.db")); !os.IsNotExist(err) {
			t.Errorf("%s: a state was made: %v", c.key, err)
		}
	}
	home := newHome(t)
	f, err := os.OpenFile(filepath.Join(home, "aegir.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("team_notes: hello\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, errs := must2(t, home, "client", "list"); !strings.Contains(errs, `unknown key "team_notes" is ignored`) {
		t.Errorf("a key far from any known one: %s", errs)
	}
}
