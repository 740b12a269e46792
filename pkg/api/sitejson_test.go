package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// TestSiteListJSON: the list of sites the API writes by hand is what
// encoding/json writes for it, byte for byte, with every field of
// entities.Site set (a field added to Site and not to appendSite fails
// here) and with none, and strings it must escape.
func TestSiteListJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 123456789, time.UTC)
	cron := at.Add(-time.Hour)
	full := &entities.Site{}
	fill(reflect.ValueOf(full).Elem(), 0)
	odd := &entities.Site{Domain: "a<b>&\"c\"\\d\u2028\ne\x01\xff.test", Aliases: []string{"x<y>&z.test", "plain.test"}, Created: at.In(time.FixedZone("x", 3600)), LastCron: &cron,
		Health: &entities.SiteHealth{Status: "error", HTTPCode: 502, TimeMS: 7, Checked: at, Error: "bad <gateway> ünïcode\t"}}
	for _, tc := range []struct {
		name string
		l    siteList
	}{{"nil", nil}, {"empty", siteList{}}, {"zero", siteList{{}}}, {"full", siteList{full}}, {"odd", siteList{odd, full, nil}}} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode([]*entities.Site(tc.l)); err != nil {
			t.Fatal(err)
		}
		got, err := tc.l.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want.Bytes())
		}
	}
}

// fill sets every field of v to a value not its zero one, pointers to
// filled values, depth keeping it finite.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + v.Type().Name() + string(rune('a'+depth)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(41 + depth))
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		if depth > 3 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// TestSiteListJSONBufferReused: writeJSON keeps the buffer of a list for
// the next one; a shorter list after a longer one carries nothing of it.
func TestSiteListJSONBufferReused(t *testing.T) {
	long := siteList{{Domain: "a-long-domain-name.test", Aliases: []string{"www.a-long-domain-name.test"}}, {Domain: "b.test"}, {Domain: "c.test"}}
	for _, l := range []siteList{long, {{Domain: "d.test"}}, {}, long[1:]} {
		w := httptest.NewRecorder()
		writeJSON(w, http.StatusOK, l)
		want, err := json.Marshal([]*entities.Site(l))
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Body.String(); got != string(want)+"\n" || w.Code != http.StatusOK {
			t.Errorf("%d: %s, want %s", w.Code, got, want)
		}
	}
}
