package hosting_test

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/hosting"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/queue"
)

// A move lock whose holder was a process of this master's name that no
// longer runs is taken over at once only when the holder was on this
// machine (its token starts with queue.Machine): one of a master with the
// same name on another machine, or one recorded by an older aegir, keeps
// its lock until its lease runs out.
func TestMoveLockPidsOfThisMachineOnly(t *testing.T) {
	st := openMasters(t)[0]
	ctx := context.Background()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	j := &hosting.StateJournals{Store: st, Lease: time.Hour}
	for token, takenOver := range map[string]bool{
		queue.Machine() + ":0123":         true,
		"0badc0de-0badc0de-0badc0de:0123": false,
		"0123456789abcdef":                false,
	} {
		name := "site-" + token[:8] + ".example"
		if _, ok, err := st.TakeMoveLock(ctx, name, queue.Master(), dead.Process.Pid, token, time.Hour, nil); err != nil || !ok {
			t.Fatalf("taking %s: %v %v", name, ok, err)
		}
		h, err := j.Lock(ctx, name, false)
		if takenOver && err != nil {
			t.Errorf("holder %s: %v, want taken over", token, err)
		}
		if !takenOver && !errors.Is(err, engine.ErrLockHeld) {
			t.Errorf("holder %s: %v, want held", token, err)
		}
		if h != nil {
			h.Release()
		}
	}
}
