package exec

// NewLocal returns the executor for this machine.
// (Being written: see the back end issue.)
func NewLocal() Executor { panic("exec.NewLocal: not written yet") }
