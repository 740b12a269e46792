package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/aegir-project/aegir/pkg/cli"
)

// TestEveryCommandHasAScript fails when a command (a leaf of the tree:
// aegir site install, aegir cert list ...) is run by no script in
// testdata/script, so that a command added later comes with a script
// that runs it. The commands are those of the reference (aegir docs),
// which leaves out the hidden ones; docs itself has docs.txtar.
func TestEveryCommandHasAScript(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"docs"}, cli.IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb}); code != 0 {
		t.Fatalf("aegir docs: exit %d: %s", code, errb.String())
	}
	var leaves []string
	for _, m := range regexp.MustCompile(`(?m)^## (aegir(?: [a-z][a-z0-9-]*)*)$`).FindAllStringSubmatch(out.String(), -1) {
		leaves = append(leaves, m[1])
	}
	if len(leaves) < 40 {
		t.Fatalf("aegir docs lists %d commands; the reference's headings changed? %.500s", len(leaves), out.String())
	}

	// Every run of aegir in a script's commands (not its comments nor the
	// files it carries), as the words that follow "aegir".
	files, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	run := regexp.MustCompile(`(?:^|\s)(aegir(?: [a-z][a-z0-9-]*)*)`)
	seen := map[string][]string{} // "aegir site install ..." prefix -> scripts
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(txtar.Parse(b).Comment), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			for _, m := range run.FindAllStringSubmatch(line, -1) {
				seen[m[1]] = append(seen[m[1]], filepath.Base(f))
			}
		}
	}
	var missing []string
	for _, leaf := range leaves {
		found := false
		for words := range seen {
			if words == leaf || strings.HasPrefix(words, leaf+" ") {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, leaf)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no script in testdata/script runs %q: add one that runs it and checks what it did (write the command right after aegir, as %q)", m, m+" ...")
	}
}
