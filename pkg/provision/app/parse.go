package app

import (
	"bytes"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Package is one module, theme, install profile or plugin found on a
// platform (or core itself).
type Package struct {
	Name    string `json:"name"`    // machine name: akismet, views, olivero
	Title   string `json:"title"`   // human name
	Type    string `json:"type"`    // core, module, theme, profile or plugin
	Version string `json:"version"` // may be empty (a custom module)
	Project string `json:"project"` // the project it belongs to: drupal, views, akismet...
	// Path is the package's directory relative to the platform root (for a
	// single-file WordPress plugin, the file); File is the file that
	// declares it (the .info.yml, .info, plugin main file or style.css).
	Path string `json:"path"`
	File string `json:"file"`
	// Core is the core versions it declares to work with
	// (core_version_requirement or core), when it says.
	Core string `json:"core,omitempty"`
}

// srcFile is one file found on a platform: its path relative to the
// platform root and, for files that declare packages, its content.
type srcFile struct {
	rel  string
	data []byte
}

// wpHeaderMax is how much of a file WordPress reads for its header.
const wpHeaderMax = 8192

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

// parseDrupal turns the files found on a Drupal platform into packages.
// files holds .info.yml and .info files with their content and .module and
// .profile files without (they tell a Drupal 7 module or profile from a
// theme, as .info files carry no type).
func parseDrupal(p Platform, files []srcFile) []Package {
	docroot := p.DocrootRel()
	siblings := map[string]bool{}
	for _, f := range files {
		if f.data == nil {
			siblings[f.rel] = true
		}
	}
	pkgs := []Package{{Name: "drupal", Title: "Drupal core", Type: TypeCore, Version: p.Version, Project: "drupal", Path: docroot,
		File: path.Join(docroot, map[bool]string{true: "includes/bootstrap.inc", false: "core/lib/Drupal.php"}[p.Major == 7])}}
	for _, f := range files {
		if f.data == nil {
			continue
		}
		var pk Package
		var ok bool
		switch {
		case p.Major >= 8 && strings.HasSuffix(f.rel, ".info.yml"):
			pk, ok = drupal8Package(f)
		case p.Major == 7 && strings.HasSuffix(f.rel, ".info"):
			pk, ok = drupal7Package(f, siblings)
		}
		if !ok {
			continue
		}
		if pk.Version == "VERSION" || (pk.Version == "" && isCorePath(p, f.rel)) {
			pk.Version = p.Version
			if pk.Project == "" {
				pk.Project = "drupal"
			}
		}
		pkgs = append(pkgs, pk)
	}
	sortPackages(pkgs)
	return pkgs
}

// isCorePath reports whether rel (relative to the root) is inside Drupal
// core: DOCROOT/core for 8+, DOCROOT/{modules,themes,profiles} for 7.
func isCorePath(p Platform, rel string) bool {
	r := strings.TrimPrefix(rel, p.DocrootRel()+"/")
	if p.Major >= 8 {
		return strings.HasPrefix(r, "core/")
	}
	return strings.HasPrefix(r, "modules/") || strings.HasPrefix(r, "themes/") || strings.HasPrefix(r, "profiles/standard/") ||
		strings.HasPrefix(r, "profiles/minimal/") || strings.HasPrefix(r, "profiles/testing/")
}

func drupal8Package(f srcFile) (Package, bool) {
	in := parseInfoYML(f.data)
	switch in.Type {
	case TypeModule, TypeTheme, TypeProfile:
	default:
		return Package{}, false // theme_engine, or not an extension
	}
	core := in.CoreVersionRequirement
	if core == "" {
		core = in.Core
	}
	name := strings.TrimSuffix(path.Base(f.rel), ".info.yml")
	return Package{Name: name, Title: orDefault(in.Name, name), Type: in.Type, Version: in.Version, Project: in.Project,
		Path: path.Dir(f.rel), File: f.rel, Core: core}, true
}

func drupal7Package(f srcFile, siblings map[string]bool) (Package, bool) {
	kv := parseInfo(f.data)
	if kv["name"] == "" {
		return Package{}, false
	}
	dir := path.Dir(f.rel)
	name := strings.TrimSuffix(path.Base(f.rel), ".info")
	typ := TypeTheme
	switch {
	case siblings[path.Join(dir, name+".profile")]:
		typ = TypeProfile
	case siblings[path.Join(dir, name+".module")]:
		typ = TypeModule
	case kv["engine"] == "" && path.Base(path.Dir(dir)) == "profiles":
		typ = TypeProfile
	}
	return Package{Name: name, Title: kv["name"], Type: typ, Version: kv["version"], Project: kv["project"],
		Path: dir, File: f.rel, Core: kv["core"]}, true
}

// wpHeader reads one field of a WordPress file header the way WordPress's
// get_file_data() does: in the first 8 KiB, on a line that may start with
// "<?php", spaces and comment characters, "Field:" (any case) and the
// rest of the line up to a closing "*/" or "?>".
func wpHeader(data []byte, field string) string {
	if len(data) > wpHeaderMax {
		data = data[:wpHeaderMax]
	}
	want := strings.ToLower(field) + ":"
	for _, line := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' || r == '\r' }) {
		l := strings.TrimLeft(line, " \t")
		l = strings.TrimPrefix(l, "<?php")
		l = strings.TrimLeft(l, " \t/*#@")
		if len(l) < len(want) || strings.ToLower(l[:len(want)]) != want {
			continue
		}
		v := l[len(want):]
		for _, end := range []string{"*/", "?>"} {
			if i := strings.Index(v, end); i >= 0 {
				v = v[:i]
			}
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// parseWordPress turns the files found on a WordPress platform (plugin PHP
// files and themes' style.css, each cut to 8 KiB) into packages.
func parseWordPress(p Platform, files []srcFile) []Package {
	pkgs := []Package{{Name: "wordpress", Title: "WordPress", Type: TypeCore, Version: p.Version, Project: "wordpress",
		Path: "", File: "wp-includes/version.php"}}
	// A plugin directory declares one plugin: the first of its files (in
	// name order) with a header.
	seenPlugin := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f.rel, "/")
		switch {
		case (len(parts) == 3 || len(parts) == 4) && parts[1] == "plugins" && strings.HasSuffix(f.rel, ".php"):
			title := wpHeader(f.data, "Plugin Name")
			slug, dir := parts[2], path.Join(parts[:3]...)
			if len(parts) == 3 {
				slug = strings.TrimSuffix(slug, ".php")
			}
			if title == "" || seenPlugin[dir] {
				continue
			}
			seenPlugin[dir] = true
			pkgs = append(pkgs, Package{Name: slug, Title: title, Type: TypePlugin, Version: wpHeader(f.data, "Version"),
				Project: slug, Path: dir, File: f.rel, Core: wpHeader(f.data, "Requires at least")})
		case len(parts) == 4 && parts[1] == "themes" && parts[3] == "style.css":
			title := wpHeader(f.data, "Theme Name")
			if title == "" {
				continue
			}
			pkgs = append(pkgs, Package{Name: parts[2], Title: title, Type: TypeTheme, Version: wpHeader(f.data, "Version"),
				Project: parts[2], Path: path.Join(parts[:3]...), File: f.rel, Core: wpHeader(f.data, "Requires at least")})
		}
	}
	sortPackages(pkgs)
	return pkgs
}

func sortPackages(pkgs []Package) {
	sort.SliceStable(pkgs[1:], func(i, j int) bool {
		a, b := pkgs[1+i], pkgs[1+j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Name < b.Name
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
