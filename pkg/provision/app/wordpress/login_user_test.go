package wordpress

import (
	"context"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

// A login link's user is checked with the front end's rule of an
// account name (entities.ValidateAccountName): what it refuses is
// refused as invalid_context before anything runs (no executor is
// given: one call on it would panic).
func TestLoginLinkUserRule(t *testing.T) {
	for _, u := range []string{" admin", "admin ", "a  b", "a/b", "a'b", strings.Repeat("a", 61)} {
		if entities.ValidateAccountName("user", u) == nil {
			t.Fatalf("the front end takes %q: pick another", u)
		}
		_, err := LoginLink(context.Background(), nil, app.Platform{}, "a.test", "", u, "www-data", nil)
		if pe, ok := err.(*provision.Error); !ok || pe.Code != provision.ErrInvalidContext || !strings.Contains(pe.Error(), "invalid user name") {
			t.Errorf("user %q: got %v, want an invalid_context error naming the user name", u, err)
		}
	}
}
