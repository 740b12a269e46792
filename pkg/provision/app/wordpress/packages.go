package wordpress

import (
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/app"
)

// scanLocal walks a WordPress platform on this machine.
func scanLocal(p app.Platform) ([]app.SrcFile, error) {
	return app.WalkLocal(p.Root, []string{"wp-content/plugins", "wp-content/themes"}, app.Walk{
		MaxDepth: 2,
		Prune:    func(rel, name string) bool { return name[0] == '.' },
		Want: func(rel, name string, depth int) (bool, int) {
			if strings.HasPrefix(rel, "wp-content/plugins/") {
				return strings.HasSuffix(name, ".php"), wpHeaderMax
			}
			return depth == 2 && name == "style.css", wpHeaderMax
		},
	})
}

// discoverScript prints the plugin files with a plugin header and the
// themes' style.css of a WordPress platform, at most about 8 KiB of each:
// $1 the root, $2 the record marker.
const discoverScript = `cd -- "$1" || exit 3
m=$2
head='FNR==1{n=0; print m " F " FILENAME} n<8192{print; n+=length($0)+1}'
if [ -d wp-content/plugins ]; then
  find -L wp-content/plugins -mindepth 1 -maxdepth 2 -name '.?*' -prune -o -type f -name '*.php' -print0 |
    xargs -0 -r grep -ilZ -- 'plugin name:' | xargs -0 -r awk -v m="$m" "$head"
fi
if [ -d wp-content/themes ]; then
  find -L wp-content/themes -maxdepth 2 -name '.?*' -prune -o -type f -path 'wp-content/themes/*/style.css' -print0 |
    xargs -0 -r awk -v m="$m" "$head"
fi
exit 0
`
