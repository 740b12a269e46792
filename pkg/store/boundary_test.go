package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// All of the state database's SQL is in this package, so that another
// driver of the store is one package: outside it (tests aside) no code
// that uses the store reaches its database (Store.DB) or database/sql,
// and every task is inserted by the one statement of insertTaskAt.
func TestStateSQLOnlyInStore(t *testing.T) {
	root := filepath.Join("..", "..")
	const self = "github.com/aegir-project/aegir/pkg/store"
	inserts := 0
	var files int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		inserts += strings.Count(string(src), "INSERT INTO tasks")
		rel, _ := filepath.Rel(root, path)
		if filepath.Dir(rel) == filepath.Join("pkg", "store") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		usesStore, usesSQL := false, false
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			usesStore = usesStore || p == self
			usesSQL = usesSQL || p == "database/sql"
		}
		if !usesStore {
			return nil // the site databases' packages (pkg/provision/db) have SQL of their own
		}
		if usesSQL {
			t.Errorf("%s uses the store and imports database/sql: its SQL belongs in pkg/store", rel)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if sel, ok := c.Fun.(*ast.SelectorExpr); ok && testOnly[sel.Sel.Name] {
					t.Errorf("%s calls %s.%s: that is for tests; add a store method", rel, exprName(sel.X), sel.Sel.Name)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read %d Go files from %s: not the module's tree", files, root)
	}
	if inserts != 1 {
		t.Errorf("%d statements insert into tasks, want 1 (insertTaskAt)", inserts)
	}
}

// testOnly are the Store's methods for tests only (testing.go).
var testOnly = map[string]bool{"TestExec": true, "TestInsert": true, "TestQueryRow": true, "TestBatch": true, "TestQuery": true}

// exprName names the receiver of a call, for the message.
func exprName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprName(x.X) + "." + x.Sel.Name
	}
	return "…"
}
