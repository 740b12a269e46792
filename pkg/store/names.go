package store

import (
	"context"
	"fmt"
	"strings"
)

// nameQueries are the queries of Names: the live records' names of each
// kind, in order, that start with a prefix (the LIKE pattern escapes %
// and _ of the prefix with \).
var nameQueries = map[string]string{
	"site":     `SELECT domain FROM sites WHERE status <> 'deleted' AND domain LIKE ?1 ESCAPE '\' ORDER BY domain`,
	"platform": `SELECT name FROM platforms WHERE status <> 'deleted' AND name LIKE ?1 ESCAPE '\' ORDER BY name`,
	"server":   `SELECT name FROM servers WHERE status <> 'deleted' AND name LIKE ?1 ESCAPE '\' ORDER BY name`,
	"client":   `SELECT name FROM clients WHERE name LIKE ?1 ESCAPE '\' ORDER BY name`,
}

// Names lists the names of the live sites (domains), platforms, servers
// or clients that start with prefix: one light query, for shell
// completion.
func (s *Store) Names(ctx context.Context, kind, prefix string) ([]string, error) {
	q, ok := nameQueries[kind]
	if !ok {
		return nil, fmt.Errorf("store: no names of %q", kind)
	}
	pattern := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"
	rows, err := s.db.QueryContext(ctx, q, pattern)
	if err != nil {
		return nil, err
	}
	return scanColumn[string](rows)
}
