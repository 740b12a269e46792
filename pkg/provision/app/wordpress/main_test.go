package wordpress

import (
	"testing"

	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }
