package app_test

import (
	"testing"

	_ "github.com/aegir-project/aegir/pkg/provision/app/all"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }
