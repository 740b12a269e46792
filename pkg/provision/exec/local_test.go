package exec_test

import (
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/exec"
	"github.com/aegir-project/aegir/pkg/provision/exec/exectest"
)

func TestLocalConformance(t *testing.T) {
	t.Parallel()
	exectest.Run(t, func(t *testing.T) exec.Executor { return exec.NewLocal() })
}
