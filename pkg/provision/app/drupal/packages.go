package drupal

import (
	"path"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/app"
)

// Directories under a Drupal docroot that hold extensions.
var drupalDirs = []string{"core", "modules", "themes", "profiles", "sites"}

// drupalSkip are directory (and file) names never searched for extensions.
var drupalSkip = map[string]bool{"node_modules": true, "bower_components": true, "vendor": true, "tests": true, "CVS": true}

// drupalPrune reports whether the walk skips rel (relative to the root):
// hidden names, drupalSkip, and sites/*/files and sites/*/private, the
// same rules as the find(1) expression of drupalScript.
func drupalPrune(sitesRel, rel, name string) bool {
	if len(name) > 1 && name[0] == '.' || drupalSkip[name] {
		return true
	}
	return (name == "files" || name == "private") && strings.HasPrefix(rel, sitesRel+"/") && strings.Count(rel[len(sitesRel)+1:], "/") >= 1
}

// scanLocal walks a Drupal platform on this machine.
func scanLocal(p app.Platform) ([]app.SrcFile, error) {
	docroot := p.DocrootRel()
	sitesRel := path.Join(docroot, "sites")
	var tops []string
	for _, d := range drupalDirs {
		tops = append(tops, path.Join(docroot, d))
	}
	return app.WalkLocal(p.Root, tops, app.Walk{
		Prune: func(rel, name string) bool { return drupalPrune(sitesRel, rel, name) },
		Want: func(rel, name string, depth int) (bool, int) {
			if strings.HasSuffix(name, ".info.yml") || strings.HasSuffix(name, ".info") {
				return true, -1
			}
			if p.Major == 7 && (strings.HasSuffix(name, ".module") || strings.HasSuffix(name, ".profile")) {
				return true, 0
			}
			return false, 0
		},
	})
}

// drupalScript prints the extension files of a Drupal platform: $1 the
// root, $2 the record marker, $3 the sites directory (relative), then the
// directories to search. Each .info.yml or .info file is printed as a line
// "MARK F PATH" followed by its content; each .module and .profile file
// as a line "MARK N PATH". The pruned names match drupalPrune.
const drupalScript = `cd -- "$1" || exit 3
m=$2 s=$3
shift 3
for d in "$@"; do
  [ -d "$d" ] || continue
  find -L "$d" \( -name '.?*' -o -name node_modules -o -name bower_components -o -name vendor -o -name tests -o -name CVS \
      -o -path "$s/*/files" -o -path "$s/*/private" \) -prune \
    -o -type f \( -name '*.info.yml' -o -name '*.info' \) -exec awk -v m="$m" 'FNR==1{print m " F " FILENAME} {print}' {} + \
    -o -type f \( -name '*.module' -o -name '*.profile' \) -exec printf "$m N %s\n" {} +
done
exit 0
`

// remoteScan is the command line of drupalScript for a Drupal
// platform, without the record marker (scanRemote adds it).
func remoteScan(p app.Platform) []string {
	docroot := p.DocrootRel()
	args := []string{drupalScript, path.Join(docroot, "sites")}
	for _, d := range drupalDirs {
		args = append(args, path.Join(docroot, d))
	}
	return args
}
