// Package output prints lists and records as a table, JSON, YAML or CSV.
//
// Commands build plain values (structs with json tags, or slices of them)
// and call Write; the json tags are the public keys in every format, and
// table and CSV columns carry the same keys. Only this package imports
// tablewriter.
package output

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/tw"
	"gopkg.in/yaml.v3"
)

// Formats lists the output formats of every list and record; ListFormats
// the ones made for lists: ids prints each record's identifying key (see
// idKey), count how many records there are.
var (
	Formats     = []string{"table", "json", "yaml", "csv"}
	ListFormats = []string{"ids", "count"}
)

// Columns is implemented by types that choose their default table and CSV
// columns for lists (one record shows every key; JSON and YAML always
// carry every key unless --fields is given).
type Columns interface{ TableColumns() []string }

// Options control one Write.
type Options struct {
	Format string   // table, json, yaml, csv; for lists also ids or count
	Fields []string // keys to keep, in order; empty: the defaults
	// Field is one key whose bare value is printed (one line a record,
	// or one line an element for a list value of a record), whatever
	// Format says.
	Field string
	// Width is the width tables must fit in (0: no limit); cells too long
	// are cut with an ellipsis. CSV, JSON and YAML are never cut.
	Width int
	// Color colors statuses in tables (for a terminal).
	Color bool
}

// FieldError is a --fields (or --field) key the value does not have.
type FieldError struct {
	Flag  string // --fields or --field; empty: --fields
	Field string
	Known []string
}

func (e *FieldError) Error() string {
	flag := e.Flag
	if flag == "" {
		flag = "--fields"
	}
	return fmt.Sprintf("invalid %s %q: not a key of this output; keys: %s", flag, e.Field, strings.Join(e.Known, ","))
}

// FormatError is a --format a value cannot be printed in.
type FormatError struct{ Format, Rule string }

func (e *FormatError) Error() string { return fmt.Sprintf("invalid --format %q: %s", e.Format, e.Rule) }

// Write prints v, a struct (or pointer to one) or a slice of them.
func Write(w io.Writer, v any, o Options) error {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	list := rv.Kind() == reflect.Slice
	elem := rv.Type()
	if list {
		elem = elem.Elem()
	}
	for elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	keys := jsonKeys(elem)
	if len(o.Fields) > 0 {
		for _, f := range o.Fields {
			if !contains(keys, f) {
				return &FieldError{Field: f, Known: keys}
			}
		}
	}
	if o.Field != "" {
		if !contains(keys, o.Field) {
			return &FieldError{Flag: "--field", Field: o.Field, Known: keys}
		}
		return writeField(w, rv, list, o.Field)
	}
	if contains(ListFormats, o.Format) && len(keys) > 0 {
		// Made for lists; one record (the record a command changed) is a
		// list of one.
		if o.Format == "count" {
			n := 1
			if list {
				n = rv.Len()
			}
			_, err := fmt.Fprintln(w, n)
			return err
		}
		id := idKey(keys)
		if id == "" {
			return &FormatError{Format: o.Format, Rule: "what this command prints has no id, domain or name; use --format count, or --field KEY (keys: " + strings.Join(keys, ",") + ")"}
		}
		return writeField(w, rv, list, id)
	}
	switch o.Format {
	case "", "table", "csv":
		cols := o.Fields
		if len(cols) == 0 {
			// A list shows the type's chosen columns; one record (a show)
			// every key.
			cols = keys
			if c, ok := reflect.New(elem).Interface().(Columns); ok && list {
				cols = c.TableColumns()
			}
		}
		rows, err := records(rv, list)
		if err != nil {
			return err
		}
		if o.Format == "csv" {
			return writeCSV(w, cols, rows)
		}
		humanSizes(rv.Type(), list, rows)
		return writeTable(w, cols, rows, list, o)
	case "json":
		if len(o.Fields) > 0 {
			return WriteJSON(w, filtered(rv, list, o.Fields))
		}
		return WriteJSON(w, v)
	case "yaml":
		if len(o.Fields) > 0 {
			return yaml.NewEncoder(w).Encode(filtered(rv, list, o.Fields))
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(v)
	}
	return &FormatError{Format: o.Format, Rule: "must be one of " + strings.Join(Formats, ", ") + " (lists also: " + strings.Join(ListFormats, ", ") + ")"}
}

// idKey is the identifying key of a record's keys, for --format ids: the
// first of id, domain and name it has; "" when it has none (a log line:
// its time identifies nothing).
func idKey(keys []string) string {
	for _, k := range []string{"id", "domain", "name"} {
		if contains(keys, k) {
			return k
		}
	}
	return ""
}

// writeField prints the bare value of key: a line a record of a list; for
// one record, a line an element of a list value (a site's aliases, a
// server's services), a nested object as one line of JSON.
func writeField(w io.Writer, rv reflect.Value, list bool, key string) error {
	bw := bufio.NewWriter(w)
	one := func(it reflect.Value, spread bool) {
		for it.Kind() == reflect.Pointer && !it.IsNil() {
			it = it.Elem()
		}
		if it.Kind() == reflect.Pointer {
			bw.WriteString("\n")
			return
		}
		for _, f := range keyFields(it.Type()) {
			if f.name != key {
				continue
			}
			v := it.FieldByIndex(f.index)
			if spread && v.Kind() == reflect.Slice {
				for i := 0; i < v.Len(); i++ {
					bw.WriteString(bare(v.Index(i)) + "\n")
				}
				return
			}
			bw.WriteString(bare(v) + "\n")
		}
	}
	if list {
		for i := 0; i < rv.Len(); i++ {
			one(rv.Index(i), false)
		}
	} else {
		one(rv, true)
	}
	return bw.Flush()
}

// bare is one value as --field prints it: the CSV text of a scalar, JSON
// of an object or a list of objects.
func bare(v reflect.Value) string {
	e := v
	for e.Kind() == reflect.Pointer && !e.IsNil() {
		e = e.Elem()
	}
	obj := e.Kind() == reflect.Map || (e.Kind() == reflect.Struct && e.Type() != timeType) ||
		(e.Kind() == reflect.Slice && e.Type().Elem().Kind() == reflect.Struct)
	if obj && (e.Kind() == reflect.Map || e.Kind() == reflect.Slice) && e.Len() == 0 {
		return "" // none, as an empty list of words is (not null or [])
	}
	if obj {
		if b, err := json.Marshal(v.Interface()); err == nil {
			return string(FixedTimes(b))
		}
	}
	return Cell(v.Interface())
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	stringerType = reflect.TypeOf((*Stringer)(nil)).Elem()
)

// WriteJSON writes v as indented JSON with its times at a fixed precision.
// Characters HTML would escape (&, <, >) stay as they are: a link's query
// string reads as the link, not as \u0026. A list is written an element at
// a time, the same text as the whole list encoded at once: the list of
// 100,000 sites is 59 MB of JSON, which a single buffer (and the copy
// FixedTimes makes of it) held twice over.
func WriteJSON(w io.Writer, v any) error {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Slice || rv.Len() == 0 || rv.Type().Elem().Kind() == reflect.Uint8 {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := w.Write(FixedTimes(buf.Bytes()))
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ") // an element's lines after its first, one level in
	bw.WriteString("[\n")
	for i := 0; i < rv.Len(); i++ {
		buf.Reset()
		// Its address, as the list's encoding sees an element (a
		// MarshalJSON on the pointer applies).
		if err := enc.Encode(rv.Index(i).Addr().Interface()); err != nil {
			return err
		}
		bw.WriteString("  ")
		bw.Write(FixedTimes(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
		if i < rv.Len()-1 {
			bw.WriteString(",")
		}
		bw.WriteString("\n")
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// jsonTime is an RFC 3339 time as encoding/json writes it: a whole
// string value, with as many fraction digits as it needs (none to nine).
var jsonTime = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)"`)

// FixedTimes rewrites every time in JSON text b with exactly three
// fraction digits (milliseconds, the state's precision), so that times
// sort as text: "12:00:00Z" would sort after "12:00:00.5Z".
func FixedTimes(b []byte) []byte {
	return jsonTime.ReplaceAllFunc(b, func(m []byte) []byte {
		p := jsonTime.FindSubmatch(m)
		frac := string(p[2]) + "000"
		return []byte(`"` + string(p[1]) + "." + frac[:3] + string(p[3]) + `"`)
	})
}

// Keys lists the keys of a record (a struct value) in order, as every
// format prints them.
func Keys(v any) []string { return jsonKeys(reflect.TypeOf(v)) }

// jsonKeys lists the json keys of a struct type in field order.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range keyFields(t) {
		keys = append(keys, f.name)
	}
	return keys
}

// keyField is one key of a struct type: its json name and its field (by
// index path, through embedded structs).
type keyField struct {
	name  string
	index []int
}

// keyFields lists the keys of a struct type as encoding/json does: the
// fields of an embedded struct without a json name count as the outer
// struct's own.
func keyFields(t reflect.Type) []keyField {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []keyField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			for _, sub := range keyFields(f.Type) {
				out = append(out, keyField{name: sub.name, index: append([]int{i}, sub.index...)})
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name := jsonName(f)
		if name == "-" {
			continue
		}
		out = append(out, keyField{name: name, index: []int{i}})
	}
	return out
}

func jsonName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return f.Name
	}
	return name
}

// records turns v into rows of key -> cell text.
func records(rv reflect.Value, list bool) ([]map[string]string, error) {
	var items []reflect.Value
	if list {
		for i := 0; i < rv.Len(); i++ {
			items = append(items, rv.Index(i))
		}
	} else {
		items = []reflect.Value{rv}
	}
	out := make([]map[string]string, 0, len(items))
	for _, it := range items {
		for it.Kind() == reflect.Pointer {
			it = it.Elem()
		}
		row := map[string]string{}
		for _, f := range keyFields(it.Type()) {
			v := it.FieldByIndex(f.index).Interface()
			if lc, ok := v.(ListCeller); ok && list && !reflect.ValueOf(v).IsNil() {
				row[f.name] = lc.ListCell()
				continue
			}
			row[f.name] = Cell(v)
		}
		out = append(out, row)
	}
	return out, nil
}

// ListCeller is implemented by nested values (pointers) that are shorter
// in a list's cell than in a show's, where every key shows.
type ListCeller interface{ ListCell() string }

// Stringer is implemented by nested values that know their one-cell text.
type Stringer interface{ CellString() string }

// Cell renders one value as table or CSV text.
func Cell(v any) string {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return ""
	}
	switch x := v.(type) {
	case nil:
		return ""
	case Stringer:
		return x.CellString()
	case string:
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339)
	case *time.Time:
		if x == nil {
			return ""
		}
		return Cell(*x)
	case []string:
		return strings.Join(x, ",")
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + x[k]
		}
		return strings.Join(parts, ",")
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		// A pointer to a scalar (days_left) is its value; nil is empty.
		if rv.IsNil() {
			return ""
		}
		return Cell(rv.Elem().Interface())
	case reflect.Slice:
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = Cell(rv.Index(i).Interface())
		}
		sep := " "
		if e := rv.Type().Elem(); e.Kind() == reflect.Struct && e != timeType && !e.Implements(stringerType) {
			sep = "; " // nested objects, each key=value ...
		}
		return strings.Join(parts, sep)
	case reflect.Struct:
		// A nested object: its set keys, key=value.
		var parts []string
		for _, f := range keyFields(rv.Type()) {
			if c := Cell(rv.FieldByIndex(f.index).Interface()); c != "" {
				parts = append(parts, f.name+"="+c)
			}
		}
		return strings.Join(parts, " ")
	case reflect.Map:
		keys := make([]string, 0, rv.Len())
		cells := map[string]string{}
		for _, k := range rv.MapKeys() {
			ks := fmt.Sprint(k.Interface())
			keys = append(keys, ks)
			cells[ks] = Cell(rv.MapIndex(k).Interface())
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + cells[k]
		}
		return strings.Join(keys, " ")
	}
	return fmt.Sprint(v)
}

// humanSizes replaces, in rows made by records, the cells of keys tagged
// table:"bytes" by a size people read (141 MiB); CSV keeps the bytes.
func humanSizes(t reflect.Type, list bool, rows []map[string]string) {
	if list {
		t = t.Elem()
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var sized []keyField
	for _, f := range keyFields(t) {
		if t.FieldByIndex(f.index).Tag.Get("table") == "bytes" {
			sized = append(sized, f)
		}
	}
	for _, f := range sized {
		for _, r := range rows {
			if n, err := strconv.ParseInt(r[f.name], 10, 64); err == nil {
				r[f.name] = HumanBytes(n)
			}
		}
	}
}

// HumanBytes is a size in bytes as people read it: 512 B, 1.5 KiB, 141 MiB.
func HumanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := -1
	for (f >= 1024 || f <= -1024) && u < len(units)-1 {
		f /= 1024
		u++
	}
	if f < 10 && f > -10 {
		return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[u]
	}
	return strconv.FormatFloat(f, 'f', 0, 64) + " " + units[u]
}

func filtered(rv reflect.Value, list bool, fields []string) any {
	one := func(it reflect.Value) any {
		b, _ := json.Marshal(it.Interface())
		var m map[string]json.RawMessage
		_ = json.Unmarshal(b, &m)
		return orderedObject{keys: fields, raw: m}
	}
	if !list {
		return one(rv)
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = one(rv.Index(i))
	}
	return out
}

// orderedObject marshals its keys in the order asked for.
type orderedObject struct {
	keys []string
	raw  map[string]json.RawMessage
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		if raw, ok := o.raw[k]; ok {
			buf.Write(raw)
		} else {
			buf.WriteString("null")
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func (o orderedObject) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range o.keys {
		var v any
		if raw, ok := o.raw[k]; ok {
			_ = json.Unmarshal(raw, &v)
		}
		var vn yaml.Node
		if err := vn.Encode(v); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &vn)
	}
	return n, nil
}

func writeCSV(w io.Writer, cols []string, rows []map[string]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return err
	}
	for _, r := range rows {
		rec := make([]string, len(cols))
		for i, c := range cols {
			rec[i] = r[c]
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeTable(w io.Writer, cols []string, rows []map[string]string, list bool, o Options) error {
	var hdr []string
	var cells [][]string
	if list {
		for _, c := range cols {
			hdr = append(hdr, strings.ToUpper(c))
		}
		for _, r := range rows {
			rec := make([]string, len(cols))
			for i, c := range cols {
				rec[i] = Printable(r[c])
			}
			cells = append(cells, rec)
		}
	} else {
		// One record: a two-column key/value table reads better.
		hdr = []string{"KEY", "VALUE"}
		for _, c := range cols {
			cells = append(cells, []string{c, Printable(rows[0][c])})
		}
	}
	fit(hdr, cells, o.Width)
	if o.Color {
		for _, rec := range cells {
			for i := range rec {
				key := rec[0]
				if list {
					key = cols[i]
				} else if i == 0 {
					continue
				}
				rec[i] = colorStatus(key, rec[i])
			}
		}
	}
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone))
	h := make([]any, len(hdr))
	for i, c := range hdr {
		h[i] = c
	}
	t.Header(h...)
	for _, rec := range cells {
		if err := t.Append(rec); err != nil {
			return err
		}
	}
	return t.Render()
}

// fit cuts the header and cells of a table (in place) so that the table,
// borders and padding included, is at most width wide: the widest column
// gives up a character until the table fits, and a cut cell ends with an
// ellipsis. Width 0 is no limit; headers are cut only when cells alone
// cannot make room, and a column keeps at least 3 characters.
func fit(hdr []string, cells [][]string, width int) {
	if width <= 0 {
		return
	}
	widths := make([]int, len(hdr))
	for i, h := range hdr {
		widths[i] = twwidth.Width(h)
	}
	for _, rec := range cells {
		for i, c := range rec {
			// A cell of several lines is as wide as its widest line.
			for _, line := range strings.Split(c, "\n") {
				widths[i] = max(widths[i], twwidth.Width(line))
			}
		}
	}
	// │ a │ b │: one border a column and one more, padding of 2 a column.
	room := width - 1 - 3*len(hdr)
	total := 0
	for _, n := range widths {
		total += n
	}
	// Cells give up characters before headers do.
	floors := make([]int, len(hdr))
	for i, h := range hdr {
		floors[i] = min(widths[i], max(twwidth.Width(h), 3))
	}
	for _, floor := range []func(int) int{func(i int) int { return floors[i] }, func(int) int { return 3 }} {
		for total > room {
			widest := -1
			for i, n := range widths {
				if n > floor(i) && (widest < 0 || n > widths[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break
			}
			widths[widest]--
			total--
		}
	}
	cut := func(s string, n int) string {
		if twwidth.Width(s) <= n {
			return s
		}
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if twwidth.Width(l) > n {
				lines[i] = twwidth.Truncate(l, n-1) + tw.CharEllipsis
			}
		}
		return strings.Join(lines, "\n")
	}
	for i := range hdr {
		hdr[i] = cut(hdr[i], widths[i])
	}
	for _, rec := range cells {
		for i := range rec {
			rec[i] = cut(rec[i], widths[i])
		}
	}
}

// escapeSeq matches the escape sequences a terminal acts on: CSI (colors,
// cursor moves, erasing), OSC (window titles, links) up to its end, and
// the two-character ones.
var escapeSeq = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])`)

// Printable is text from servers and sites (a command's error, a
// plugin's name) as a terminal may show it: escape sequences in it would
// recolor (whatever --no-color says), move the cursor or retitle the
// terminal, and a carriage return would write over a table. Escape
// sequences go, a tab is a space, line breaks stay, and any other
// control character shows as U+FFFD (a line break of a CR with it is a
// line break). CSV, JSON and YAML keep the text as it is.
func Printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case isControl(r):
			return '\uFFFD'
		}
		return r
	}, escapeSeq.ReplaceAllString(s, ""))
}

// isControl says whether r is a control character other than a line
// break: C0, DEL or C1.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\n') || (r >= 0x7f && r < 0xa0)
}

// ANSI colors of statuses.
const (
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	red    = "\x1b[31m"
	reset  = "\x1b[0m"
)

// StatusColor is the ANSI color of a status word: green when all is well,
// yellow while waiting or held back, red for failures; "" for other words.
func StatusColor(status string) string {
	switch status {
	case "success", "installed", "enabled", "ok", "yes":
		return green
	case "queued", "processing", "warning", "disabled", "locked", "migrating", "cancelled":
		return yellow
	case "error", "failed", "deleted", "down", "unreachable":
		return red
	}
	return ""
}

// Colorize wraps s in color (an ANSI sequence from StatusColor); s as it
// is when color is "".
func Colorize(color, s string) string {
	if color == "" || s == "" {
		return s
	}
	return color + s + reset
}

// colorStatus colors the cell of a status key (status, site_status, ...).
func colorStatus(key, cell string) string {
	if key != "status" && !strings.HasSuffix(key, "_status") && key != "level" && key != "health" {
		return cell
	}
	word, _, _ := strings.Cut(cell, " ")
	if key == "health" {
		// A nested health object: its status=... part.
		for _, part := range strings.Fields(cell) {
			if v, ok := strings.CutPrefix(part, "status="); ok {
				word = v
			}
		}
	}
	return Colorize(StatusColor(word), cell)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
