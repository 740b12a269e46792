package cli

import (
	"strings"
	"testing"
)

// client add refuses a name or email that cannot be, naming the field,
// before it writes anything; a good one is recorded and printed.
func TestRunClientAdd(t *testing.T) {
	a := testApp(t)
	refused(t, a, `invalid client name "Acme Inc"`, func() error {
		return runClientAdd(&ClientAddOptions{App: a, Name: "Acme Inc"})
	})
	refused(t, a, `invalid --email "ops@"`, func() error {
		return runClientAdd(&ClientAddOptions{App: a, Name: "acme", Email: "ops@"})
	})
	if err := runClientAdd(&ClientAddOptions{App: a, Name: "acme", Email: "ops@acme.test"}); err != nil {
		t.Fatal(err)
	}
	if out := stdout(a); !strings.Contains(out, "ops@acme.test") {
		t.Fatalf("client add printed:\n%s", out)
	}
	if c, err := a.st.GetClient(a.ctx, "acme"); err != nil || c.Email != "ops@acme.test" {
		t.Fatalf("recorded client: %+v, %v", c, err)
	}
}

// client edit tells an --email given empty (no address) from one not
// given (the address kept), and keeps the address when it is not given.
func TestClientEditEmail(t *testing.T) {
	a := testApp(t)
	var got *ClientEditOptions
	keep := kept(&got)
	parse(t, newClientEditCmd(a, keep), "acme", "--email", "")
	if got.Name != "acme" || !got.EmailSet || got.Email != "" {
		t.Fatalf("--email '': %+v", got)
	}
	parse(t, newClientEditCmd(a, keep), "acme")
	if got.EmailSet {
		t.Fatalf("no --email parsed as given: %+v", got)
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(runClientAdd(&ClientAddOptions{App: a, Name: "acme", Email: "ops@acme.test"}))
	must(runClientEdit(&ClientEditOptions{App: a, Name: "acme"}))
	if c, _ := a.st.GetClient(a.ctx, "acme"); c.Email != "ops@acme.test" {
		t.Fatalf("edit without --email changed the email to %q", c.Email)
	}
	refused(t, a, `invalid --email "x"`, func() error {
		return runClientEdit(&ClientEditOptions{App: a, Name: "acme", Email: "x", EmailSet: true})
	})
	must(runClientEdit(&ClientEditOptions{App: a, Name: "acme", EmailSet: true}))
	if c, _ := a.st.GetClient(a.ctx, "acme"); c.Email != "" {
		t.Fatalf("edit --email '' left the email %q", c.Email)
	}
}
