// Command aegir hosts Drupal and WordPress sites on your own servers.
package main

import (
	"os"

	"github.com/aegir-project/aegir/pkg/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
