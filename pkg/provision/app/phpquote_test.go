package app_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
)

// tricky are values that break naive quoting in PHP, SQL or the shell.
var tricky = []string{
	"", "plain", "it's", `back\slash`, `trailing\`, `\'`, `\\'`, `'; system('id'); '`, `$HOME ${x} {$y}`,
	"new\nline", "?> <?php echo 1; ?>", `"double"`, "tab\tand unicode: é ü 日本", `\n is not a newline`,
}

func TestPHPString(t *testing.T) {
	var lits []string
	for _, s := range tricky {
		lits = append(lits, app.PHPString(s))
		if got := app.UnquotePHP(app.PHPString(s)[1 : len(app.PHPString(s))-1]); got != s {
			t.Errorf("UnquotePHP(PHPString(%q)) = %q", s, got)
		}
	}
	file := filepath.Join(t.TempDir(), "lits.php")
	code := "<?php\n$v = array(\n" + strings.Join(lits, ",\n") + "\n);\necho json_encode($v);\n"
	if err := os.WriteFile(file, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	apptest.PHPLint(t, file)
	out, err := exec.Command("php", file).Output()
	if err != nil {
		t.Fatalf("php: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(tricky) {
		t.Fatalf("got %d values", len(got))
	}
	for i := range tricky {
		if got[i] != tricky[i] {
			t.Errorf("PHP read %s as %q, want %q", lits[i], got[i], tricky[i])
		}
	}
	if err := app.CheckPHPValue("x", "a\x00b"); err == nil {
		t.Error("a NUL byte was accepted")
	}
}
