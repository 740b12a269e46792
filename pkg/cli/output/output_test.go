package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type row struct {
	Name    string     `json:"name" yaml:"name"`
	Tags    []string   `json:"tags" yaml:"tags"`
	On      bool       `json:"on" yaml:"on"`
	When    time.Time  `json:"when" yaml:"when"`
	Maybe   *time.Time `json:"maybe" yaml:"maybe"`
	Secret  string     `json:"-" yaml:"-"`
	Comment string     `json:"comment" yaml:"comment"`
}

func (row) TableColumns() []string { return []string{"name", "tags", "on"} }

var when = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)

func rows() []row {
	return []row{{Name: "a", Tags: []string{"x", "y"}, On: true, When: when, Secret: "s3cret", Comment: "has, comma"}, {Name: "b", Tags: []string{}}}
}

func write(t *testing.T, v any, o Options) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, v, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFormats(t *testing.T) {
	js := write(t, rows(), Options{Format: "json"})
	var got []map[string]any
	if err := json.Unmarshal([]byte(js), &got); err != nil || len(got) != 2 || got[0]["when"] != "2026-11-25T06:00:00.000Z" || got[0]["maybe"] != nil {
		t.Fatalf("json: %v\n%s", err, js)
	}
	if strings.Contains(js, "s3cret") {
		t.Fatal("a json:\"-\" field was printed")
	}
	y := write(t, rows(), Options{Format: "yaml"})
	var gy []map[string]any
	if err := yaml.Unmarshal([]byte(y), &gy); err != nil || len(gy) != 2 || gy[0]["name"] != "a" {
		t.Fatalf("yaml: %v\n%s", err, y)
	}
	csv := write(t, rows(), Options{Format: "csv"})
	if csv != "name,tags,on\na,\"x,y\",yes\nb,,no\n" {
		t.Fatalf("csv:\n%q", csv)
	}
	tab := write(t, rows(), Options{Format: "table"})
	if !strings.Contains(tab, "NAME") || !strings.Contains(tab, "x,y") || strings.Contains(tab, "COMMENT") {
		t.Fatalf("table:\n%s", tab)
	}
	one := write(t, rows()[0], Options{Format: "table"})
	if !strings.Contains(one, "KEY") || !strings.Contains(one, "name") || !strings.Contains(one, "has, comma") || strings.Contains(one, "s3cret") {
		t.Fatalf("record table:\n%s", one)
	}
}

func TestFields(t *testing.T) {
	js := write(t, rows(), Options{Format: "json", Fields: []string{"comment", "name"}})
	if !strings.Contains(js, "{\n    \"comment\": \"has, comma\",\n    \"name\": \"a\"\n  }") {
		t.Fatalf("json fields keep the asked order:\n%s", js)
	}
	csv := write(t, rows(), Options{Format: "csv", Fields: []string{"comment"}})
	if csv != "comment\n\"has, comma\"\n\n" {
		t.Fatalf("csv fields:\n%q", csv)
	}
	y := write(t, rows()[0], Options{Format: "yaml", Fields: []string{"name", "on"}})
	if y != "name: a\non: true\n" {
		t.Fatalf("yaml fields:\n%q", y)
	}
	var fe *FieldError
	if err := Write(&bytes.Buffer{}, rows(), Options{Format: "json", Fields: []string{"secret"}}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "keys: name,tags,on,when,maybe,comment") {
		t.Fatalf("unknown field: %v", err)
	}
	if err := Write(&bytes.Buffer{}, rows(), Options{Format: "xml"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// The fields of an embedded struct are the outer record's own keys, in
// every format, as in JSON.
func TestEmbeddedFields(t *testing.T) {
	type outer struct {
		row   `yaml:",inline"`
		Extra string `json:"extra" yaml:"extra"`
	}
	v := outer{row: rows()[0], Extra: "more"}
	if csv := write(t, v, Options{Format: "csv", Fields: []string{"name", "extra"}}); csv != "name,extra\na,more\n" {
		t.Fatalf("csv of an embedded struct:\n%q", csv)
	}
	tab := write(t, v, Options{Format: "table"})
	if !strings.Contains(tab, "has, comma") || !strings.Contains(tab, "more") || strings.Contains(tab, "s3cret") {
		t.Fatalf("table of an embedded struct:\n%s", tab)
	}
	if y := write(t, v, Options{Format: "yaml", Fields: []string{"name"}}); y != "name: a\n" {
		t.Fatalf("yaml fields of an embedded struct:\n%q", y)
	}
}

// Values in tables: a pointer is its value, a nested object its set keys,
// a size tagged bytes is for people; CSV keeps the raw values.
func TestTableValues(t *testing.T) {
	type health struct {
		Status string `json:"status"`
		Code   int    `json:"http_code"`
		Error  string `json:"error"`
	}
	type rec struct {
		Name   string  `json:"name"`
		Days   *int    `json:"days"`
		None   *int    `json:"none"`
		Size   int64   `json:"size" table:"bytes"`
		Health *health `json:"health"`
	}
	days := 40
	v := []rec{{Name: "a", Days: &days, Size: 147849216, Health: &health{Status: "ok", Code: 200}}}
	tab := write(t, v, Options{Format: "table"})
	for _, want := range []string{"│ a    │ 40   │      │ 141 MiB │ status=ok http_code=200 │"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	if csv := write(t, v, Options{Format: "csv", Fields: []string{"days", "size"}}); csv != "days,size\n40,147849216\n" {
		t.Errorf("csv: %q", csv)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 147849216: "141 MiB", 5 << 30: "5.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A table cut to a width: the widest cells give up characters first, with
// an ellipsis; headers are cut only when cells alone cannot make room.
func TestTableWidth(t *testing.T) {
	type rec struct {
		Domain string `json:"domain"`
		Status string `json:"status"`
	}
	v := []rec{{"a-very-long-domain-name.example.com", "installed"}}
	tab := write(t, v, Options{Format: "table", Width: 30})
	if !strings.Contains(tab, "│ a-very-long-d… │ installed │") {
		t.Errorf("width 30:\n%s", tab)
	}
	for _, line := range strings.Split(strings.TrimSpace(tab), "\n") {
		if n := len([]rune(line)); n != 30 {
			t.Errorf("a line of %d columns, want 30:\n%s", n, tab)
		}
	}
	// Too narrow for the headers: they are cut too, to 3 at least.
	tab = write(t, v, Options{Format: "table", Width: 14})
	if !strings.Contains(tab, "│ DO… │ STA… │") || !strings.Contains(tab, "│ a-… │ ins… │") {
		t.Errorf("width 14:\n%s", tab)
	}
	if whole := write(t, v, Options{Format: "table"}); !strings.Contains(whole, v[0].Domain) {
		t.Errorf("no width, cut anyway:\n%s", whole)
	}
	if c := write(t, v, Options{Format: "table", Color: true}); !strings.Contains(c, "\x1b[32minstalled\x1b[0m") {
		t.Errorf("color: %q", c)
	}
}

// --field prints bare values; --format ids the identifying key, count the
// number of records.
func TestFieldIDsCount(t *testing.T) {
	if got := write(t, rows(), Options{Field: "name"}); got != "a\nb\n" {
		t.Errorf("--field of a list: %q", got)
	}
	if got := write(t, rows()[0], Options{Field: "tags"}); got != "x\ny\n" {
		t.Errorf("--field of a list value: %q", got)
	}
	if got := write(t, rows(), Options{Format: "ids"}); got != "a\nb\n" {
		t.Errorf("ids: %q", got)
	}
	if got := write(t, rows(), Options{Format: "count"}); got != "2\n" {
		t.Errorf("count: %q", got)
	}
	// Records with no id, domain or name have no ids (a log line's time
	// is none): refused, not their first key.
	type line struct {
		Time    time.Time `json:"time"`
		Message string    `json:"message"`
	}
	var fmtErr *FormatError
	if err := Write(&bytes.Buffer{}, []line{{when, "x"}}, Options{Format: "ids"}); !errors.As(err, &fmtErr) || !strings.Contains(err.Error(), "no id, domain or name") {
		t.Errorf("ids of log lines: %v", err)
	}
	if got := write(t, []line{{when, "x"}}, Options{Format: "count"}); got != "1\n" {
		t.Errorf("count of log lines: %q", got)
	}
	var fe *FieldError
	if err := Write(&bytes.Buffer{}, rows(), Options{Field: "secret"}); !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), `invalid --field "secret"`) {
		t.Errorf("unknown --field: %v", err)
	}
}

// JSON times carry three fraction digits whatever their value, so that
// they sort as text; strings that only contain a time are left alone.
func TestJSONTimesSortAsText(t *testing.T) {
	base := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	times := []time.Time{base, base.Add(500 * time.Millisecond), base.Add(123 * time.Millisecond), base.Add(time.Second + 7*time.Nanosecond)}
	var b bytes.Buffer
	if err := WriteJSON(&b, map[string]any{"times": times, "note": "at 2026-12-02T06:00:00Z it ran"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Times []string
		Note  string
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-12-02T06:00:00.000Z", "2026-12-02T06:00:00.500Z", "2026-12-02T06:00:00.123Z", "2026-12-02T06:00:01.000Z"}
	if strings.Join(got.Times, " ") != strings.Join(want, " ") || got.Note != "at 2026-12-02T06:00:00Z it ran" {
		t.Fatalf("times %q, note %q", got.Times, got.Note)
	}
	for i := range times {
		for j := range times {
			if times[i].Before(times[j]) != (got.Times[i] < got.Times[j]) {
				t.Errorf("%s and %s do not sort as their times", got.Times[i], got.Times[j])
			}
		}
	}
}

// A list of nested objects in one cell: each its key=value pairs, "; "
// between them.
func TestNestedList(t *testing.T) {
	type check struct {
		Kind string `json:"kind"`
		OK   bool   `json:"ok"`
	}
	type rec struct {
		Name   string  `json:"name"`
		Checks []check `json:"checks"`
	}
	csv := write(t, rec{Name: "a", Checks: []check{{"http", true}, {"db", false}}}, Options{Format: "csv", Fields: []string{"checks"}})
	if csv != "checks\nkind=http ok=yes; kind=db ok=no\n" {
		t.Errorf("csv: %q", csv)
	}
	// --field of a show: one element a line, as for a list of words
	// (aegir server show web1 --field services | jq -c ...); of a list, one
	// record a line.
	if f := write(t, rec{Name: "a", Checks: []check{{"http", true}, {"db", false}}}, Options{Field: "checks"}); f != `{"kind":"http","ok":true}`+"\n"+`{"kind":"db","ok":false}`+"\n" {
		t.Errorf("--field of a list of objects: %q", f)
	}
	if f := write(t, []rec{{Name: "a", Checks: []check{{"http", true}, {"db", false}}}, {Name: "b"}}, Options{Field: "checks"}); f != `[{"kind":"http","ok":true},{"kind":"db","ok":false}]`+"\n\n" {
		t.Errorf("--field of a list of objects, in a list: %q", f)
	}
}

// A link printed as JSON reads as the link: & < > are not escaped.
func TestJSONKeepsLinks(t *testing.T) {
	link := "https://a.test/wp-login.php?action=aegir-login&token=abc<x>"
	for _, o := range []Options{{Format: "json"}, {}} {
		var b bytes.Buffer
		var err error
		if o.Format == "" {
			err = WriteJSON(&b, map[string]string{"link": link})
		} else {
			err = Write(&b, map[string]string{"link": link}, o)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), link) || strings.Contains(b.String(), `\u0026`) {
			t.Errorf("%q: want the link %q as it is", b.String(), link)
		}
	}
}

// Text from servers and sites reaches a table as text: its escape
// sequences (a color, a window title) and control characters do not act
// on the terminal, colored or not; CSV and JSON keep it as it is.
func TestTableControlCharacters(t *testing.T) {
	type rec struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	}
	hostile := "\x1b[31mred\x1b[0m\x1b]0;owned\x07 a\tb\rc\u009bd\x7f\n2nd line"
	v := []rec{{"plugin\x1b]8;;http://x.test/\x1b\\", hostile}}
	for _, o := range []Options{{Format: "table"}, {Format: "table", Color: true, Width: 30}} {
		tab := write(t, v, o)
		if strings.ContainsAny(tab, "\x1b\x07\r\t\x7f\u009b") {
			t.Errorf("%+v: a control character reached the table: %q", o, tab)
		}
		if o.Width == 0 && (!strings.Contains(tab, "│ plugin │ red a b\uFFFDc\uFFFDd\uFFFD │") || !strings.Contains(tab, "2nd line")) {
			t.Errorf("the text around the control characters:\n%s", tab)
		}
	}
	one := write(t, v[0], Options{Format: "table"})
	if strings.Contains(one, "\x1b") || !strings.Contains(one, "red a b\uFFFDc") {
		t.Errorf("one record:\n%s", one)
	}
	if c := write(t, v, Options{Format: "csv"}); !strings.Contains(c, hostile) {
		t.Errorf("csv changed the text: %q", c)
	}
	var back []rec
	if err := json.Unmarshal([]byte(write(t, v, Options{Format: "json"})), &back); err != nil || back[0].Error != hostile {
		t.Errorf("json changed the text: %q %v", back, err)
	}
	if got := Printable("dos\r\nlines\r\n"); got != "dos\nlines\n" {
		t.Errorf("Printable of CRLF lines: %q", got)
	}
	if got := Printable("plain, unicode: é 日本 ✓"); got != "plain, unicode: é 日本 ✓" {
		t.Errorf("Printable of plain text: %q", got)
	}
}

// pointerMarshal has a MarshalJSON on its pointer, which a list's
// encoding applies to its elements.
type pointerMarshal struct{ N int }

func (p *pointerMarshal) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int{"n": p.N * 10})
}

// A list is written an element at a time (WriteJSON streams it): the text
// is the same as the whole value encoded at once, times fixed and links
// kept.
func TestJSONListStreamedSameText(t *testing.T) {
	half := when.Add(500 * time.Millisecond)
	values := []any{
		rows(),
		&[]row{{Name: "<a&b>", When: half, Maybe: &half}},
		[]*row{{Name: "p"}, nil},
		[]map[string]any{{"k": []int{1, 2}, "when": half}, {}},
		[][]string{{"x"}, {}, nil},
		[]any{1, "two", nil, map[string]bool{"t": true}},
		[]pointerMarshal{{1}, {2}},
		[]row{},
		[]row(nil),
		[]byte("bytes"),
		row{Name: "one", When: half},
	}
	for i, v := range values {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := WriteJSON(&got, v); err != nil {
			t.Fatal(err)
		}
		if w := FixedTimes(want.Bytes()); !bytes.Equal(got.Bytes(), w) {
			t.Errorf("value %d: got\n%s\nwant\n%s", i, got.Bytes(), w)
		}
	}
}
