package app

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// leadingNumber is the major version at the start of a core version.
var leadingNumber = regexp.MustCompile(`^[0-9]+`)

// Detect finds out which application the platform at root is (Drupal 7 or
// 8+, plain or Composer, or WordPress), its docroot and its core version.
// A root that does not exist, or that holds neither, is a
// *provision.Error with a hint.
func Detect(ctx context.Context, ex exec.Executor, root string) (Platform, error) {
	if err := entities.ValidateAbsPath("platform root", root); err != nil {
		return Platform{}, PlatformError("give the platform's directory as an absolute path", "%v", err)
	}
	fi, err := ex.Stat(ctx, root)
	if errors.Is(err, fs.ErrNotExist) {
		return Platform{}, PlatformError(
			"restore the platform's code at "+root+" on "+ex.Host()+", or, if it is gone for good, move its sites away and delete the platform",
			"platform root %s does not exist on %s", root, ex.Host()).With(entities.Do("platform.delete", "NAME"))
	}
	if err != nil {
		return Platform{}, PlatformError("check that aegir's user on "+ex.Host()+" can enter every directory of the path",
			"platform root %s on %s: %v", root, ex.Host(), err)
	}
	if !fi.IsDir() {
		return Platform{}, PlatformError("give the platform's directory, not a file", "platform root %s on %s is not a directory", root, ex.Host())
	}
	drivers := all()
	for _, d := range drivers {
		for _, m := range d.Markers() {
			file := path.Join(root, m.File)
			b, err := ReadOptional(ctx, ex, file)
			if err != nil {
				return Platform{}, PlatformError("check that aegir's user on "+ex.Host()+" can read the platform's files", "%v", err)
			}
			if b == nil {
				continue
			}
			p := Platform{Type: d.Type(), Root: root, Docroot: path.Join(root, m.Docroot), Driver: d}
			sub := m.Version.FindSubmatch(b)
			if sub == nil {
				return Platform{}, PlatformError("the core files look damaged: reinstall the platform's core",
					"%s on %s does not say which %s version it is (no VERSION found)", file, ex.Host(), p.Type)
			}
			p.Version = string(sub[1])
			p.Major, _ = strconv.Atoi(leadingNumber.FindString(p.Version))
			if p.Major == 0 {
				return Platform{}, PlatformError("the core files look damaged: reinstall the platform's core",
					"%s on %s gives a version %q that does not start with a number", file, ex.Host(), p.Version)
			}
			d.Inspect(ctx, ex, &p)
			return p, nil
		}
	}
	var holds, pointAt []string
	for _, d := range drivers {
		h, a := d.Describe()
		holds, pointAt = append(holds, h), append(pointAt, a)
	}
	return Platform{}, PlatformError(
		"point the platform at the directory that holds "+orList(pointAt),
		"%s on %s holds %s", root, ex.Host(), noneOf(holds))
}

// orList is "A", "A or B", "A, B or C".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// noneOf is "no A", "neither A nor B", "none of A, B and C".
func noneOf(items []string) string {
	switch len(items) {
	case 0:
		return "no known application"
	case 1:
		return "no " + items[0]
	case 2:
		return "neither " + items[0] + " nor " + items[1]
	}
	return "none of " + strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
