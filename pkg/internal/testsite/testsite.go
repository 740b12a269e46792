// Package testsite gives tests site domains of their own on the shared
// MariaDB: a domain unique to the run, and the clean-up of every database
// and user named after it, so that a test drops only what it made.
package testsite

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql" // the shared MariaDB, for the clean-up

	"github.com/aegir-project/aegir/pkg/provision/db"
)

// Unique is a new domain PREFIXhex.test whose database name keeps its
// random part (it panics when the prefix is too long for that).
func Unique(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	d := fmt.Sprintf("%s%x.test", prefix, b)
	if n := db.NameFor(d, nil); !strings.Contains(n, fmt.Sprintf("%x", b)) {
		panic(fmt.Sprintf("testsite.Unique(%q): the database name %s derived from %s lost its random part; use a shorter prefix", prefix, n, d))
	}
	return d
}

// Domain is a new unique domain whose databases and users are dropped
// when the test ends (Unique, DropDBsOf).
func Domain(t *testing.T, prefix string) string {
	d := Unique(prefix)
	DropDBsOf(t, d)
	return d
}

// DropDBsOf drops, when the test ends, every database and user on the
// shared MariaDB whose name starts with the one derived from domain
// (restores and migrates make name_2, name_3 ...).
func DropDBsOf(t *testing.T, domain string) {
	base := db.NameFor(domain, nil)
	t.Cleanup(func() {
		m, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
		if err != nil {
			return
		}
		defer m.Close()
		for _, n := range column(m, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?`, base+"%") {
			_, _ = m.Exec("DROP DATABASE IF EXISTS `" + n + "`")
		}
		for _, u := range column(m, "SELECT CONCAT('`', User, '`@`', Host, '`') FROM mysql.user WHERE User LIKE ?", base+"%") {
			_, _ = m.Exec("DROP USER " + u)
		}
	})
}

// column is the one string column a query returns (none on an error).
func column(m *sql.DB, query string, args ...any) []string {
	rows, err := m.Query(query, args...)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if rows.Scan(&s) == nil {
			out = append(out, s)
		}
	}
	return out
}
