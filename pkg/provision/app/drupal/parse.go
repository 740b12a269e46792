package drupal

import (
	"bytes"
	"path"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/app"
	"gopkg.in/yaml.v3"
)

// infoYML is the part of a Drupal 8+ .info.yml that aegir reads.
type infoYML struct {
	Name                   string `yaml:"name"`
	Type                   string `yaml:"type"`
	Version                string `yaml:"version"`
	Project                string `yaml:"project"`
	Core                   string `yaml:"core"`
	CoreVersionRequirement string `yaml:"core_version_requirement"`
}

// parseInfoYML reads a .info.yml. Files that yaml.v3 refuses (the
// drupal.org packaging script appends a second "version:" to some) are
// read key by key, the last value of a key winning.
func parseInfoYML(b []byte) infoYML {
	var in infoYML
	if err := yaml.Unmarshal(b, &in); err == nil {
		return in
	}
	kv := topLevelKeys(b, ':')
	return infoYML{Name: kv["name"], Type: kv["type"], Version: kv["version"], Project: kv["project"],
		Core: kv["core"], CoreVersionRequirement: kv["core_version_requirement"]}
}

// parseInfo reads the top-level keys of a Drupal 7 .info file (an INI-like
// format: key = value, ; comments, key[] = value for lists, which are
// skipped).
func parseInfo(b []byte) map[string]string { return topLevelKeys(b, '=') }

// topLevelKeys reads "key SEP value" lines that are not indented, not
// comments and not list items; quotes around a value are removed.
func topLevelKeys(b []byte, sep byte) map[string]string {
	kv := map[string]string{}
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' || line[0] == '#' || line[0] == ';' || line[0] == '-' {
			continue
		}
		i := bytes.IndexByte(line, sep)
		if i <= 0 {
			continue
		}
		key := string(bytes.TrimSpace(line[:i]))
		if strings.ContainsAny(key, "[] ") {
			continue
		}
		kv[key] = unquoteValue(string(bytes.TrimSpace(line[i+1:])))
	}
	return kv
}

// unquoteValue strips matching quotes (and, for YAML, a trailing comment
// after an unquoted value).
func unquoteValue(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		if j := strings.LastIndexByte(v, v[0]); j > 0 {
			inner := v[1:j]
			if v[0] == '"' {
				inner = strings.ReplaceAll(inner, `\"`, `"`)
			} else {
				inner = strings.ReplaceAll(inner, `''`, `'`)
			}
			return inner
		}
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// parse turns the files found on a Drupal platform into packages.
// files holds .info.yml and .info files with their content and .module and
// .profile files without (they tell a Drupal 7 module or profile from a
// theme, as .info files carry no type).
func parse(p app.Platform, files []app.SrcFile) []app.Package {
	docroot := p.DocrootRel()
	siblings := map[string]bool{}
	for _, f := range files {
		if f.Data == nil {
			siblings[f.Rel] = true
		}
	}
	pkgs := []app.Package{{Name: "drupal", Title: "Drupal core", Type: app.TypeCore, Version: p.Version, Project: "drupal", Path: docroot,
		File: path.Join(docroot, map[bool]string{true: "includes/bootstrap.inc", false: "core/lib/Drupal.php"}[p.Major == 7])}}
	for _, f := range files {
		if f.Data == nil {
			continue
		}
		var pk app.Package
		var ok bool
		switch {
		case p.Major >= 8 && strings.HasSuffix(f.Rel, ".info.yml"):
			pk, ok = drupal8Package(f)
		case p.Major == 7 && strings.HasSuffix(f.Rel, ".info"):
			pk, ok = drupal7Package(f, siblings)
		}
		if !ok {
			continue
		}
		if pk.Version == "VERSION" || (pk.Version == "" && isCorePath(p, f.Rel)) {
			pk.Version = p.Version
			if pk.Project == "" {
				pk.Project = "drupal"
			}
		}
		pkgs = append(pkgs, pk)
	}
	app.SortPackages(pkgs)
	return pkgs
}

// isCorePath reports whether rel (relative to the root) is inside Drupal
// core: DOCROOT/core for 8+, DOCROOT/{modules,themes,profiles} for 7.
func isCorePath(p app.Platform, rel string) bool {
	r := strings.TrimPrefix(rel, p.DocrootRel()+"/")
	if p.Major >= 8 {
		return strings.HasPrefix(r, "core/")
	}
	return strings.HasPrefix(r, "modules/") || strings.HasPrefix(r, "themes/") || strings.HasPrefix(r, "profiles/standard/") ||
		strings.HasPrefix(r, "profiles/minimal/") || strings.HasPrefix(r, "profiles/testing/")
}

func drupal8Package(f app.SrcFile) (app.Package, bool) {
	in := parseInfoYML(f.Data)
	switch in.Type {
	case app.TypeModule, app.TypeTheme, app.TypeProfile:
	default:
		return app.Package{}, false // theme_engine, or not an extension
	}
	core := in.CoreVersionRequirement
	if core == "" {
		core = in.Core
	}
	name := strings.TrimSuffix(path.Base(f.Rel), ".info.yml")
	return app.Package{Name: name, Title: app.OrDefault(in.Name, name), Type: in.Type, Version: in.Version, Project: in.Project,
		Path: path.Dir(f.Rel), File: f.Rel, Core: core}, true
}

func drupal7Package(f app.SrcFile, siblings map[string]bool) (app.Package, bool) {
	kv := parseInfo(f.Data)
	if kv["name"] == "" {
		return app.Package{}, false
	}
	dir := path.Dir(f.Rel)
	name := strings.TrimSuffix(path.Base(f.Rel), ".info")
	typ := app.TypeTheme
	switch {
	case siblings[path.Join(dir, name+".profile")]:
		typ = app.TypeProfile
	case siblings[path.Join(dir, name+".module")]:
		typ = app.TypeModule
	case kv["engine"] == "" && path.Base(path.Dir(dir)) == "profiles":
		typ = app.TypeProfile
	}
	return app.Package{Name: name, Title: kv["name"], Type: typ, Version: kv["version"], Project: kv["project"],
		Path: dir, File: f.Rel, Core: kv["core"]}, true
}
