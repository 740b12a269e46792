package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aegir-project/aegir/pkg/store"
)

// An install through the API that would take the client over its quota
// of sites is 409 with the quota and the usage, and records nothing.
func TestInstallOverQuota(t *testing.T) {
	e := newAPIEnv(t, 100)
	ctx := context.Background()
	c, err := e.st.GetClient(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	c.QuotaSites = int64(c.Sites)
	if err := e.st.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.call(t, "ann", "POST", "/api/sites", `{"domain":"q.acme.test", "platform":"p1"}`)
	if msg, _ := errorOf(t, body); code != 409 || msg != "client acme: quota of 2 sites reached (2 in use)" {
		t.Fatalf("install over the quota: %d %s, want 409 naming the quota", code, body)
	}
	if _, err := e.st.GetSite(ctx, "q.acme.test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused install was recorded: %v", err)
	}
	// Another client is not held back.
	if code, body, _ := e.call(t, "olga", "POST", "/api/sites", `{"domain":"q.other.test", "platform":"p1"}`); code != 202 {
		t.Fatalf("other's install: %d %s", code, body)
	}
}
