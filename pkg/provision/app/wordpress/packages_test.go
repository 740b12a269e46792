package wordpress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
)

func TestDiscoverWordPress(t *testing.T) {
	root := apptest.WPPlatform(t)
	extra := map[string]string{
		"wp-content/plugins/hello-aegir.php":    "<?php\n/**\n * Plugin Name: Hello Aegir\n * Version: 1.2.3\n * Requires at least: 5.0\n */\n",
		"wp-content/plugins/multi/multi.php":    "<?php\n/*\nPlugin Name:   Multi File   */\n",
		"wp-content/plugins/multi/inc/x.php":    "<?php\n// Plugin Name: not a plugin (too deep)\n",
		"wp-content/plugins/multi/readme.php":   "<?php\n// nothing\n",
		"wp-content/plugins/.hidden/h.php":      "<?php\n/* Plugin Name: Hidden */\n",
		"wp-content/plugins/late/late.php":      "<?php\n" + strings.Repeat("// padding padding padding padding\n", 300) + "/* Plugin Name: Too late */\n",
		"wp-content/themes/aegirtest/style.css": "/*\r\nTheme Name: Aegir Test\r\nVersion: 0.9\r\nRequires at least: 6.0\r\n*/\r\nbody{}\n",
		"wp-content/themes/notheme/style.css":   "body { color: red }\n",
	}
	apptest.WriteTree(t, root, extra)
	t.Cleanup(func() {
		for _, d := range []string{"plugins/hello-aegir.php", "plugins/multi", "plugins/.hidden", "plugins/late", "themes/aegirtest", "themes/notheme"} {
			os.RemoveAll(filepath.Join(root, "wp-content", d))
		}
	})
	p, got := apptest.DiscoverBoth(t, root)
	want := []app.Package{
		{Name: "wordpress", Title: "WordPress", Type: app.TypeCore, Version: p.Version, Project: "wordpress", Path: "", File: "wp-includes/version.php"},
		{Name: "hello-aegir", Title: "Hello Aegir", Type: app.TypePlugin, Version: "1.2.3", Project: "hello-aegir", Path: "wp-content/plugins/hello-aegir.php", File: "wp-content/plugins/hello-aegir.php", Core: "5.0"},
		{Name: "multi", Title: "Multi File", Type: app.TypePlugin, Project: "multi", Path: "wp-content/plugins/multi", File: "wp-content/plugins/multi/multi.php"},
		{Name: "aegirtest", Title: "Aegir Test", Type: app.TypeTheme, Version: "0.9", Project: "aegirtest", Path: "wp-content/themes/aegirtest", File: "wp-content/themes/aegirtest/style.css", Core: "6.0"},
	}
	// What Debian's package ships: akismet, with the version its header
	// gives, and any twentytwenty* themes that are installed.
	akismet, err := os.ReadFile(filepath.Join(root, "wp-content/plugins/akismet/akismet.php"))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, app.Package{Name: "akismet", Title: wpHeader(akismet, "Plugin Name"), Type: app.TypePlugin, Version: wpHeader(akismet, "Version"),
		Project: "akismet", Path: "wp-content/plugins/akismet", File: "wp-content/plugins/akismet/akismet.php", Core: wpHeader(akismet, "Requires at least")})
	if !strings.HasPrefix(want[len(want)-1].Title, "Akismet") || want[len(want)-1].Version == "" {
		t.Fatalf("akismet's header: %+v", want[len(want)-1])
	}
	themes, _ := filepath.Glob(filepath.Join(root, "wp-content/themes/twenty*/style.css"))
	for _, css := range themes {
		rel, _ := filepath.Rel(root, css)
		if got[filepath.Dir(rel)].Type != app.TypeTheme || got[filepath.Dir(rel)].Version == "" {
			t.Errorf("theme %s: %+v", rel, got[filepath.Dir(rel)])
		}
		want = append(want, got[filepath.Dir(rel)])
	}
	apptest.CheckPackages(t, got, want)
}

func TestWPHeader(t *testing.T) {
	cases := []struct{ data, field, want string }{
		{"<?php\n/**\n * Plugin Name: Akismet Anti-Spam\n */", "Plugin Name", "Akismet Anti-Spam"},
		{"<?php /* Plugin Name: One Line */ ?>", "Plugin Name", "One Line"},
		{"<?php\n# plugin name: lower case", "Plugin Name", "lower case"},
		{"<?php\n@Version: 2.0 ?>\n", "Version", "2.0"},
		{"<?php\n// Plugin Name:\n// Plugin Name: Second\n", "Plugin Name", "Second"},
		{"<?php\n$x = 'Plugin Name: no';", "Plugin Name", ""},
	}
	for _, c := range cases {
		if got := wpHeader([]byte(c.data), c.field); got != c.want {
			t.Errorf("wpHeader(%q, %q) = %q, want %q", c.data, c.field, got, c.want)
		}
	}
}
