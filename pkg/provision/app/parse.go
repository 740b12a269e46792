package app

import (
	"sort"
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

// SrcFile is one file found on a platform: its path relative to the
// platform root and, for files that declare packages, its content.
type SrcFile struct {
	Rel  string
	Data []byte
}

func SortPackages(pkgs []Package) {
	sort.SliceStable(pkgs[1:], func(i, j int) bool {
		a, b := pkgs[1+i], pkgs[1+j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Name < b.Name
	})
}

func OrDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
