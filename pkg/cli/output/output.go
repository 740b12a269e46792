// Package output prints lists and records as a table, JSON, YAML or CSV.
//
// Commands build plain values (structs with json tags, or slices of them)
// and call Write; the json tags are the public keys in every format, and
// table and CSV columns carry the same keys. Only this package imports
// tablewriter.
package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"gopkg.in/yaml.v3"
)

// Formats lists the output formats.
var Formats = []string{"table", "json", "yaml", "csv"}

// Columns is implemented by types that choose their default table and CSV
// columns for lists (one record shows every key; JSON and YAML always
// carry every key unless --fields is given).
type Columns interface{ TableColumns() []string }

// Options control one Write.
type Options struct {
	Format string   // table, json, yaml or csv
	Fields []string // keys to keep, in order; empty: the defaults
}

// FieldError is a --fields key the value does not have.
type FieldError struct {
	Field string
	Known []string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid --fields %q: not a key of this output; keys: %s", e.Field, strings.Join(e.Known, ","))
}

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
		return writeTable(w, cols, rows, list)
	case "json":
		if len(o.Fields) > 0 {
			return writeJSON(w, filtered(rv, list, o.Fields))
		}
		return writeJSON(w, v)
	case "yaml":
		if len(o.Fields) > 0 {
			return yaml.NewEncoder(w).Encode(filtered(rv, list, o.Fields))
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		return enc.Encode(v)
	}
	return fmt.Errorf("invalid --format %q: must be one of %s", o.Format, strings.Join(Formats, ", "))
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

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
			row[f.name] = Cell(it.FieldByIndex(f.index).Interface())
		}
		out = append(out, row)
	}
	return out, nil
}

// Stringer is implemented by nested values that know their one-cell text.
type Stringer interface{ CellString() string }

// Cell renders one value as table or CSV text.
func Cell(v any) string {
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
	if rv.Kind() == reflect.Slice {
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = Cell(rv.Index(i).Interface())
		}
		return strings.Join(parts, " ")
	}
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return ""
	}
	return fmt.Sprint(v)
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

func writeTable(w io.Writer, cols []string, rows []map[string]string, list bool) error {
	if !list {
		// One record: a two-column key/value table reads better.
		t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAutoWrap(tw.WrapNone))
		t.Header("KEY", "VALUE")
		for _, c := range cols {
			if err := t.Append([]string{c, rows[0][c]}); err != nil {
				return err
			}
		}
		return t.Render()
	}
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAutoWrap(tw.WrapNone))
	hdr := make([]any, len(cols))
	for i, c := range cols {
		hdr[i] = strings.ToUpper(c)
	}
	t.Header(hdr...)
	for _, r := range rows {
		rec := make([]string, len(cols))
		for i, c := range cols {
			rec[i] = r[c]
		}
		if err := t.Append(rec); err != nil {
			return err
		}
	}
	return t.Render()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
