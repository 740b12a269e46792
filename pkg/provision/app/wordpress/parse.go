package wordpress

import (
	"path"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/app"
)

// wpHeaderMax is how much of a file WordPress reads for its header.
const wpHeaderMax = 8192

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

// parse turns the files found on a WordPress platform (plugin PHP
// files and themes' style.css, each cut to 8 KiB) into packages.
func parse(p app.Platform, files []app.SrcFile) []app.Package {
	pkgs := []app.Package{{Name: "wordpress", Title: "WordPress", Type: app.TypeCore, Version: p.Version, Project: "wordpress",
		Path: "", File: "wp-includes/version.php"}}
	// A plugin directory declares one plugin: the first of its files (in
	// name order) with a header.
	seenPlugin := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f.Rel, "/")
		switch {
		case (len(parts) == 3 || len(parts) == 4) && parts[1] == "plugins" && strings.HasSuffix(f.Rel, ".php"):
			title := wpHeader(f.Data, "Plugin Name")
			slug, dir := parts[2], path.Join(parts[:3]...)
			if len(parts) == 3 {
				slug = strings.TrimSuffix(slug, ".php")
			}
			if title == "" || seenPlugin[dir] {
				continue
			}
			seenPlugin[dir] = true
			pkgs = append(pkgs, app.Package{Name: slug, Title: title, Type: app.TypePlugin, Version: wpHeader(f.Data, "Version"),
				Project: slug, Path: dir, File: f.Rel, Core: wpHeader(f.Data, "Requires at least")})
		case len(parts) == 4 && parts[1] == "themes" && parts[3] == "style.css":
			title := wpHeader(f.Data, "Theme Name")
			if title == "" {
				continue
			}
			pkgs = append(pkgs, app.Package{Name: parts[2], Title: title, Type: app.TypeTheme, Version: wpHeader(f.Data, "Version"),
				Project: parts[2], Path: path.Join(parts[:3]...), File: f.Rel, Core: wpHeader(f.Data, "Requires at least")})
		}
	}
	app.SortPackages(pkgs)
	return pkgs
}
