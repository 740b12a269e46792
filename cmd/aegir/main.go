// Command aegir hosts Drupal and WordPress sites on your own servers.
package main

import (
	"os"
	"runtime/debug"

	"github.com/aegir-project/aegir/pkg/cli"
	"github.com/aegir-project/aegir/pkg/provision/priv"
	"github.com/aegir-project/aegir/pkg/provision/privhelper"
)

func main() {
	// Installed as aegir-priv (root's, one sudo rule), the binary is the
	// privileged helper and nothing else: none of aegir's commands run as
	// root through that rule.
	if privhelper.Invoked(os.Args[0]) {
		os.Exit(privhelper.Main(os.Args[1:], priv.DefaultConfigFile, os.Stdout, os.Stderr))
	}
	// A command lives for milliseconds and allocates its output once:
	// collect garbage less often (GOGC in the environment still wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// With that, a large output (the JSON list of 100,000 sites) let the
	// heap grow to five times what it holds, 275 MB: past 160 MiB the
	// collector runs as often as it needs to stay under (about 160 MB,
	// for the same CPU time). Small commands never get near it.
	// GOMEMLIMIT in the environment still wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(160 << 20)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
