package cli

// Every command is built the same way: its constructor (newSiteInstallCmd)
// only parses the arguments and flags into an Options struct
// (SiteInstallOptions), which holds them and the invocation (*App: streams,
// the state, configuration and output settings), then calls the command's
// run function (runSiteInstall) with it. A test either fills an Options
// value and calls the run function, or passes its own runF to the
// constructor to see what was parsed.

// runWith runs the command's options o: with runF when a test gave one,
// else with run, the command's own.
func runWith[O any](o O, runF, run func(O) error) error {
	if runF != nil {
		return runF(o)
	}
	return run(o)
}
