package entities

import "strings"

// Action is a thing to do that an error or a hint proposes, named in the
// model's terms and not in any front end's: a verb ("site.cert",
// "server.edit", "task.retry", "backup.list"), the record it is done to
// (a site's domain, a server's name, a task's id; empty for a verb on no
// record, such as "server.list") and named arguments, which are the
// record's setting names. The back end and the store say what to do with
// Actions and keep their hints neutral prose; each front end words them
// (the command line as `aegir site cert a.example --cert FILE --key FILE`).
type Action struct {
	Verb   string `json:"verb" yaml:"verb"`
	Target string `json:"target,omitempty" yaml:"target,omitempty"`
	Args   []Arg  `json:"args,omitempty" yaml:"args,omitempty"`
}

// Arg is one named argument of an Action. An empty Value is a switch
// (force, accept-host-key); a value in capitals is a placeholder for what
// the administrator gives (FILE, USER).
type Arg struct {
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
}

// Do builds an Action: verb, target, then its arguments each as "name" (a
// switch) or "name=value". The verb and each argument's name are written
// as literals where Do is called, so that a test can check every Action
// the code builds against the front end's commands.
func Do(verb, target string, args ...string) Action {
	a := Action{Verb: verb, Target: target}
	for _, s := range args {
		name, value, _ := strings.Cut(s, "=")
		a.Args = append(a.Args, Arg{Name: name, Value: value})
	}
	return a
}
