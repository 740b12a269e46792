// Package backup writes, checks and unpacks aegir's site backups: one
// .tar.gz archive per backup, on the master, that plain `tar xzf` reads.
//
// # The archive
//
// Members, in this order:
//
//	database.sql       the site's database, as the server's dump tool wrote it
//	PART/...           the site's files and settings, one prefix per Part
//	                   (WordPress: uploads/ and settings.php; Drupal: site/;
//	                   ssl/: the site's certificate and key, if it has one)
//	manifest.json      the Manifest: site, platform, core version, when, and
//	                   the type, size, mode and SHA-256 of every member above
//
// The archive is written as it is read from the servers: the dump streams
// from the database server and the files from the web server (through its
// exec.Executor: SFTP for a remote one) straight into the compressor; no
// copy of the site is made anywhere, neither on the servers nor on the
// master. The dump comes first although its size, which its tar header
// must hold, is known only at its end: the archive starts with a gzip
// member of fixed length that holds the dump's tar header uncompressed and
// is written last (gzip readers, tar xzf included, read concatenated gzip
// members as one stream). The rest is compressed in parallel
// (github.com/klauspost/pgzip).
//
// The archive is written under a temporary name beside its final one
// (.NAME.tmp-task-ID-* in a task, .NAME.tmp-* without), with mode 0600,
// and given its name only when whole and synced; a backup that fails
// leaves nothing behind, and the rescue of a task whose dispatcher was
// killed while it wrote one removes it (TaskTemps).
//
// # Checks
//
// Verify reads the whole archive and checks every member against the
// manifest: a member changed, missing, added or cut short, a truncated or
// damaged stream, all fail with the name of what is wrong. The SHA-256 of
// the whole file is kept in the state too (Info.SHA256), and Sum checks it
// quickly before a restore.
package backup

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Names of the fixed members.
const (
	DatabaseMember = "database.sql"
	ManifestMember = "manifest.json"
)

// Format names the archive layout in Manifest.Format.
const Format = "aegir-backup/1"

// Member types in the manifest.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Part is one piece of a site on its web server that goes into the
// archive under its own name: a directory (every member under NAME/) or a
// single file (the member NAME).
type Part struct {
	Name string `json:"name"` // member prefix, e.g. "uploads", "site", "settings.php"
	Path string `json:"path"` // absolute path on the web server
	Dir  bool   `json:"dir"`
	// Optional parts are often missing (a site without a certificate):
	// their absence is not logged.
	Optional bool `json:"optional,omitempty"`
}

// Manifest describes a backup: what site it holds and a checksum of every
// member. It is the archive's last member, manifest.json.
type Manifest struct {
	Format       string   `json:"format"`
	Site         string   `json:"site"`
	URL          string   `json:"url,omitempty"` // the site's address when it was backed up
	Aliases      []string `json:"aliases,omitempty"`
	Platform     string   `json:"platform"`
	PlatformType string   `json:"platform_type"`
	CoreVersion  string   `json:"core_version"`
	WebServer    string   `json:"web_server,omitempty"`
	DBServer     string   `json:"db_server,omitempty"`
	DBType       string   `json:"db_type,omitempty"`
	DBName       string   `json:"db_name,omitempty"`
	// CertSource is where the site's certificate came from (acme, or
	// admin for one the administrator brought), when the backup holds one.
	CertSource string `json:"cert_source,omitempty"`
	// CertFile is the file name (in the ssl part) of the certificate in
	// service when the backup was made.
	CertFile string    `json:"cert_file,omitempty"`
	Created  time.Time `json:"created"`
	Parts    []Part    `json:"parts"`
	Members  []Member  `json:"members"`
}

// Member is one archive member as the manifest records it.
type Member struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // TypeFile, TypeDir or TypeSymlink
	Size   int64  `json:"size,omitempty"`
	Mode   string `json:"mode"` // octal permission bits, e.g. "0644"
	SHA256 string `json:"sha256,omitempty"`
	Link   string `json:"link,omitempty"` // a symlink's target
}

// Member returns the manifest's entry for name.
func (m *Manifest) Member(name string) (Member, bool) {
	for _, x := range m.Members {
		if x.Name == name {
			return x, true
		}
	}
	return Member{}, false
}

// Files counts the regular files of the site in the manifest (the
// database dump not included).
func (m *Manifest) Files() (n int, bytes int64) {
	for _, x := range m.Members {
		if x.Type == TypeFile && x.Name != DatabaseMember {
			n++
			bytes += x.Size
		}
	}
	return n, bytes
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// checkName refuses member names that could leave the directory they are
// unpacked in: absolute, with "..", not clean, or with odd characters.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || strings.HasPrefix(name, "/"):
		return fmt.Errorf("member name %q is empty or absolute", name)
	case strings.ContainsAny(name, "\x00\\\n\r"):
		return fmt.Errorf("member name %q holds a NUL, backslash or line break", name)
	case path.Clean(name) != strings.TrimSuffix(name, "/"):
		return fmt.Errorf("member name %q is not a clean path", name)
	}
	for _, el := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if el == ".." {
			return fmt.Errorf("member name %q climbs out with ..", name)
		}
	}
	return nil
}

// partOf returns the part a member name belongs to and the rest of the
// name under it ("" for the part itself).
func partOf(parts []Part, name string) (Part, string, bool) {
	name = strings.TrimSuffix(name, "/")
	for _, p := range parts {
		if name == p.Name {
			return p, "", true
		}
		if p.Dir && strings.HasPrefix(name, p.Name+"/") {
			return p, name[len(p.Name)+1:], true
		}
	}
	return Part{}, "", false
}

// checkParts validates parts before they are used.
func checkParts(parts []Part) error {
	seen := map[string]bool{}
	for _, p := range parts {
		if err := checkName(p.Name); err != nil || strings.Contains(p.Name, "/") || p.Name == DatabaseMember || p.Name == ManifestMember {
			return fmt.Errorf("invalid part name %q", p.Name)
		}
		if !path.IsAbs(p.Path) || path.Clean(p.Path) != p.Path || p.Path == "/" {
			return fmt.Errorf("part %s: path %q must be absolute, clean and not /", p.Name, p.Path)
		}
		if seen[p.Name] {
			return fmt.Errorf("part %s given twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// Logf receives log lines (provision levels: info, warning, ...).
type Logf func(level, format string, args ...any)

func (l Logf) log(level, format string, args ...any) {
	if l != nil {
		l(level, format, args...)
	}
}
