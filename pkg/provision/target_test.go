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
