package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// openWebhook opens a new state with one webhook.
func openWebhook(t *testing.T) (*Store, *entities.Webhook) {
	t.Helper()
	s := open(t)
	w := &entities.Webhook{URL: "http://127.0.0.1:9/hook", Events: []string{entities.EventSiteUnhealthy}, Secret: "s"}
	if err := s.AddWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return s, w
}

// PruneDeliveries deletes the deliveries that ended before the cutoff
// (by their last attempt, else their creation), oldest first, batch a
// statement and at most maxBatches of them, saying when some are left;
// pending ones stay however old, and so do those that ended since. A
// batch is never more than PruneBatch.
func TestPruneDeliveries(t *testing.T) {
	s, w := openWebhook(t)
	ctx := context.Background()
	cut := pruneNow.Add(-30 * day)
	add := func(status string, created time.Time, last *time.Time) int64 {
		t.Helper()
		var la any
		if last != nil {
			la = last.UnixMilli()
		}
		id, err := insert(ctx, s.db, `INSERT INTO webhook_deliveries (webhook_id, event, body, status, created, next_attempt, last_attempt)
			VALUES (?, 'site.unhealthy', '{}', ?, ?, ?, ?)`, w.ID, status, created.UnixMilli(), created.UnixMilli(), la)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	at := func(d time.Duration) *time.Time { x := cut.Add(d); return &x }
	// Made long before the cutoff, in an order that is not their end's.
	made := cut.Add(-60 * day)
	a := add(entities.DeliveryDelivered, made, at(-day))
	b := add(entities.DeliveryFailed, made, at(-3*day))
	c := add(entities.DeliveryDelivered, made, at(-2*day))
	d := add(entities.DeliveryFailed, cut.Add(-4*day), nil) // no attempt: by its creation
	pending := add(entities.DeliveryPending, made, at(-10*day))
	recent := add(entities.DeliveryDelivered, made, at(day))
	left := func() []int64 {
		t.Helper()
		rows, err := s.db.Query(`SELECT id FROM webhook_deliveries ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := scanColumn[int64](rows)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	n, more, err := s.PruneDeliveries(ctx, cut, 2, 1)
	if err != nil || n != 2 || !more {
		t.Fatalf("one batch of 2: %d, more %v, %v; want 2 and more", n, more, err)
	}
	if got, want := left(), []int64{a, c, pending, recent}; !slices.Equal(got, want) {
		t.Fatalf("after one batch: %v left, want %v (the oldest two, %d and %d, gone)", got, want, d, b)
	}
	n, more, err = s.PruneDeliveries(ctx, cut, 2, 0)
	if err != nil || n != 2 || more {
		t.Fatalf("the rest: %d, more %v, %v; want 2 and no more", n, more, err)
	}
	if got, want := left(), []int64{pending, recent}; !slices.Equal(got, want) {
		t.Fatalf("after the rest: %v left, want %v", got, want)
	}
	// A batch asked larger than PruneBatch is PruneBatch.
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		INSERT INTO webhook_deliveries (webhook_id, event, body, status, created, next_attempt, last_attempt)
		SELECT ?2, 'site.unhealthy', '{}', 'delivered', CAST(?3 AS BIGINT) + i, CAST(?3 AS BIGINT) + i, CAST(?3 AS BIGINT) + i FROM n`,
		PruneBatch+1, w.ID, made.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	n, more, err = s.PruneDeliveries(ctx, cut, 10*PruneBatch, 1)
	if err != nil || n != PruneBatch || !more {
		t.Fatalf("a batch of %d asked: %d, more %v, %v; want %d and more", 10*PruneBatch, n, more, err, PruneBatch)
	}
	if n, more, err = s.PruneDeliveries(ctx, cut, 0, 0); err != nil || n != 1 || more {
		t.Fatalf("the last: %d, more %v, %v; want 1", n, more, err)
	}
}

// A batch of PruneDeliveries reads webhook_deliveries_ended, on either
// engine, and on SQLite (which has no statistics) in its order, with no
// sort: a state of 30 days of deliveries, of which a day is old enough.
func TestPruneDeliveriesUsesIndex(t *testing.T) {
	s, w := openWebhook(t)
	ctx := context.Background()
	const n, step = 3000, 15 * time.Minute // 31 days
	first := pruneNow.Add(-n * step)
	if _, err := s.db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		INSERT INTO webhook_deliveries (webhook_id, event, body, status, created, next_attempt, last_attempt)
		SELECT ?2, 'site.unhealthy', '{}', CASE WHEN i % 50 = 0 THEN 'pending' WHEN i % 10 = 0 THEN 'failed' ELSE 'delivered' END,
			CAST(?3 AS BIGINT) + i * CAST(?4 AS BIGINT), CAST(?3 AS BIGINT) + i * CAST(?4 AS BIGINT), CAST(?3 AS BIGINT) + i * CAST(?4 AS BIGINT) FROM n`,
		n, w.ID, first.UnixMilli(), step.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	if err := s.analyze(ctx); err != nil {
		t.Fatal(err)
	}
	cut := pruneNow.Add(-30 * day).UnixMilli()
	var plan []string
	if s.dialect == postgresDialect {
		rows, err := s.db.QueryContext(ctx, `EXPLAIN `+endedDeliveries, cut, PruneBatch)
		if err != nil {
			t.Fatal(err)
		}
		if plan, err = scanColumn[string](rows); err != nil {
			t.Fatal(err)
		}
	} else {
		rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+endedDeliveries, cut, PruneBatch)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "webhook_deliveries_ended") || strings.Contains(text, "TEMP B-TREE") {
		t.Fatalf("the prune's batch does not read webhook_deliveries_ended (in order, on SQLite):\n%s", text)
	}
	t.Logf("plan:\n%s", text)
}
