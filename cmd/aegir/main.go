// Command aegir hosts Drupal and WordPress sites on your own servers.
package main

import (
	"os"
	"runtime/debug"

	"github.com/aegir-project/aegir/pkg/cli"
)

func main() {
	// A command lives for milliseconds and allocates its output once:
	// collect garbage less often (GOGC in the environment still wins).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
