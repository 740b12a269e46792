package provision

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Every target_ field has its own counterpart and goes both ways:
// SetTarget from a context, Target back, through JSON too.
func TestTargetRoundTrip(t *testing.T) {
	ct := reflect.TypeOf(Context{})
	var at Context
	av := reflect.ValueOf(&at).Elem()
	n := 0
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		own, ok := strings.CutPrefix(f.Name, "Target")
		if !ok {
			continue
		}
		of, found := ct.FieldByName(own)
		if !found || of.Type != f.Type {
			t.Fatalf("%s has no field %s of the same type", f.Name, own)
		}
		if tag, want := f.Tag.Get("json"), "target_"+of.Tag.Get("json"); tag != want {
			t.Errorf("%s: json key %q, want %q", f.Name, tag, want)
		}
		v := av.FieldByName(own)
		switch v.Kind() {
		case reflect.String:
			v.SetString(fmt.Sprintf("value-%d", i))
		case reflect.Int:
			v.SetInt(int64(1000 + i))
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"alias-1.test", fmt.Sprintf("alias-%d.test", i)}))
		default:
			t.Fatalf("field %s: kind %s not covered", own, v.Kind())
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d target_ fields", n)
	}
	c := &Context{Task: "site.migrate", SiteDomain: "old.test", Platform: "p1"}
	c.SetTarget(&at)
	if !c.HasTarget() {
		t.Fatal("HasTarget false after SetTarget")
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeContext(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := back.Target()
	for i := 0; i < ct.NumField(); i++ {
		own, ok := strings.CutPrefix(ct.Field(i).Name, "Target")
		if !ok {
			continue
		}
		if w, g := av.FieldByName(own).Interface(), reflect.ValueOf(got).Elem().FieldByName(own).Interface(); !reflect.DeepEqual(w, g) {
			t.Errorf("%s: target has %v, want %v", own, g, w)
		}
	}
	if got.Task != "site.migrate" || back.SiteDomain != "old.test" || back.Platform != "p1" {
		t.Errorf("the context's own fields changed: %+v", back)
	}
	// The target is a copy: changing it leaves the context alone.
	got.SiteAliases[0] = "changed.test"
	if back.TargetSiteAliases[0] != "alias-1.test" {
		t.Error("Target shares its aliases with the context")
	}
}

// ownOnly are the fields of a context that have no target_ twin, and why:
// they belong to the task, to the master, or to the site wherever it goes.
var ownOnly = map[string]string{
	"Task":           "the task",
	"TaskID":         "the task",
	"Extra":          "the task's options",
	"Server":         "server tasks only",
	"WebUser":        "the master's setting, the same for every server",
	"WebGroup":       "the master's setting, the same for every server",
	"SiteProfile":    "the site's, wherever it goes",
	"SiteLanguage":   "the site's, wherever it goes",
	"SiteClient":     "the site's, wherever it goes",
	"SiteClientMail": "the site's, wherever it goes",
	"SiteTitle":      "the site's install options, wherever it goes",
	"SiteAdminUser":  "the site's install options, wherever it goes",
	"SiteAdminEmail": "the site's install options, wherever it goes",
	"SiteCertFile":   "the certificate at the source; a move installs its own at the target",
	"SiteKeyFile":    "the certificate at the source; a move installs its own at the target",
	"SiteCertSource": "the certificate at the source; a move installs its own at the target",
	"ACMEDirectory":  "the master's CA, the same for every server",
	"ACMEEmail":      "the master's CA, the same for every server",
	"ACMECAFile":     "the master's CA, the same for every server",
	"ACMERenewDays":  "the master's CA, the same for every server",
	"BackupDir":      "on the master",
	"BackupPath":     "on the master",
	"BackupSHA256":   "on the master",
}

// Every own field of a context has its target_ twin, unless ownOnly
// says why not: a field about the place a site is (its web server, its
// database server, its platform) that a migrate does not carry to the
// target keeps the source's value there (issue 15: http_listen_ip).
func TestEveryOwnFieldHasATargetTwin(t *testing.T) {
	ct := reflect.TypeOf(Context{})
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if strings.HasPrefix(f.Name, "Target") {
			continue
		}
		_, twin := ct.FieldByName("Target" + f.Name)
		why, exempt := ownOnly[f.Name]
		switch {
		case twin && exempt:
			t.Errorf("%s has a target_ twin but ownOnly says: %s", f.Name, why)
		case !twin && !exempt:
			t.Errorf("%s (%s) has no target_ twin: a migrate would keep the source's value at the target; add Target%s (and its pair in linkTarget), or say in ownOnly why it needs none",
				f.Name, strings.Split(f.Tag.Get("json"), ",")[0], f.Name)
		}
	}
	for name := range ownOnly {
		if _, ok := ct.FieldByName(name); !ok {
			t.Errorf("ownOnly names %s, which is no field of Context", name)
		}
	}
}
