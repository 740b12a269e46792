package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

const webhookCols = `w.id, w.url, w.events, COALESCE(c.name, ''), w.secret, w.created`

const webhookFrom = ` FROM webhooks w LEFT JOIN clients c ON c.id = w.client_id`

func scanWebhook(sc scanner) (*entities.Webhook, error) {
	var w entities.Webhook
	var events string
	var created int64
	if err := sc.Scan(&w.ID, &w.URL, &events, &w.Client, &w.Secret, &created); err != nil {
		return nil, err
	}
	w.Events = strings.Split(events, ",")
	w.Created = fromMs(created)
	return &w, nil
}

// AddWebhook records a webhook (its client by name, none for all
// events) with its secret.
func (s *Store) AddWebhook(ctx context.Context, w *entities.Webhook) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		cid, err := clientID(ctx, tx, w.Client)
		if err != nil {
			return err
		}
		newID, err := insert(ctx, tx, `INSERT INTO webhooks (url, events, client_id, secret, created) VALUES (?, ?, ?, ?, ?)`,
			w.URL, strings.Join(w.Events, ","), cid, w.Secret, s.now())
		if err != nil {
			return err
		}
		w.ID = newID
		w.Created = fromMs(s.now())
		return nil
	})
}

// GetWebhook finds a webhook by id.
func (s *Store) GetWebhook(ctx context.Context, id int64) (*entities.Webhook, error) {
	w, err := scanWebhook(s.db.QueryRowContext(ctx, `SELECT `+webhookCols+webhookFrom+` WHERE w.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{Kind: "webhook", Name: itoa(id)}
	}
	return w, err
}

// ListWebhooks lists every webhook by id.
func (s *Store) ListWebhooks(ctx context.Context) ([]*entities.Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+webhookCols+webhookFrom+` ORDER BY w.id`)
	return scanEach(rows, err, scanWebhook)
}

// DeleteWebhook deletes a webhook and its deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return &NotFoundError{Kind: "webhook", Name: itoa(id)}
	}
	return nil
}

const deliveryCols = `id, webhook_id, event, status, status_code, attempts, error, created, last_attempt, next_attempt, body`

func scanDelivery(sc scanner) (*entities.Delivery, error) {
	var d entities.Delivery
	var created, next int64
	var last sql.NullInt64
	if err := sc.Scan(&d.ID, &d.Webhook, &d.Event, &d.Status, &d.StatusCode, &d.Attempts, &d.Error, &created, &last, &next, &d.Body); err != nil {
		return nil, err
	}
	d.Created = fromMs(created)
	d.LastAttempt = fromNullMs(last)
	if d.Status == entities.DeliveryPending {
		t := fromMs(next)
		d.NextAttempt = &t
	}
	return &d, nil
}

// Deliveries lists webhook id's deliveries, newest first, at most limit
// (≤ 0: all).
func (s *Store) Deliveries(ctx context.Context, id int64, limit int) ([]*entities.Delivery, error) {
	if _, err := s.GetWebhook(ctx, id); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1 << 62 // no limit (PostgreSQL refuses LIMIT -1)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`, id, limit)
	return scanEach(rows, err, scanDelivery)
}

// RecordEvent queues body, the JSON of event ev, for every webhook that
// wants the event: those of no client, and those of client (the client
// of the event's site; "" reaches only the former). With a mark, the
// event is recorded once: a mark recorded already (the same state told
// before) queues nothing; no webhook that wants it, no mark. It returns how many deliveries it queued. It
// only writes rows: the dispatcher sends them (ClaimDeliveries).
func (s *Store) RecordEvent(ctx context.Context, ev, client, mark string, body []byte) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		now := s.now()
		// No webhook wants it: no mark either, so that a webhook added
		// later hears of a state that lasts.
		var wanted int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks w LEFT JOIN clients c ON c.id = w.client_id WHERE `+wants, ev, client).Scan(&wanted); err != nil || wanted == 0 {
			return err
		}
		if mark != "" {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_marks (key, created) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`, mark, now)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				return nil
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (webhook_id, event, body, created, next_attempt)
			SELECT w.id, ?, ?, ?, ? FROM webhooks w LEFT JOIN clients c ON c.id = w.client_id WHERE `+wants, ev, string(body), now, now, ev, client)
		if err != nil {
			return err
		}
		k, _ := res.RowsAffected()
		n = int(k)
		return nil
	})
	return n, err
}

// wants selects the webhooks (w, their client c) that want event ? of
// client ? ("": an event of no client's).
const wants = `(',' || w.events || ',') LIKE ('%,' || ? || ',%') AND (w.client_id IS NULL OR c.name = ?)`

// ForgetMarks deletes the marks that start with prefix and are not in
// keep: states that ended (a site healthy again), so that the next time
// is told again.
func (s *Store) ForgetMarks(ctx context.Context, prefix string, keep []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT key FROM webhook_marks WHERE substr(key, 1, ?) = ?`, len(prefix), prefix)
		if err != nil {
			return err
		}
		marks, err := scanColumn[string](rows)
		if err != nil {
			return err
		}
		kept := map[string]bool{}
		for _, k := range keep {
			kept[k] = true
		}
		for _, m := range marks {
			if kept[m] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_marks WHERE key = ?`, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// DueDelivery is a delivery claimed for sending, with where it goes.
type DueDelivery struct {
	*entities.Delivery
	URL    string
	Secret string
}

// ClaimDeliveries takes up to limit pending deliveries whose next attempt
// has come (oldest first) and holds them until now+hold, in one statement,
// so that two dispatchers never send one delivery at once. Each claimed
// delivery must be ended with DeliveryAttempt.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]*DueDelivery, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE webhook_deliveries SET next_attempt = ?1
		WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt <= ?2 ORDER BY next_attempt, id LIMIT ?3)
		RETURNING `+deliveryCols, ms2(now.Add(hold)), ms2(now), limit)
	ds, err := scanEach(rows, err, scanDelivery)
	if err != nil {
		return nil, err
	}
	out := make([]*DueDelivery, 0, len(ds))
	for _, d := range ds {
		var url, secret string
		if err := s.db.QueryRowContext(ctx, `SELECT url, secret FROM webhooks WHERE id = ?`, d.Webhook).Scan(&url, &secret); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted meanwhile, with its deliveries
			}
			return nil, err
		}
		out = append(out, &DueDelivery{Delivery: d, URL: url, Secret: secret})
	}
	return out, nil
}

// Attempt is how one attempt to send a delivery went.
type Attempt struct {
	At         time.Time
	StatusCode int    // 0: no answer
	Error      string // "": delivered
	// Next is when to try again after a failure; zero: never (failed).
	Next time.Time
}

// DeliveryAttempt records an attempt at delivery id.
func (s *Store) DeliveryAttempt(ctx context.Context, id int64, a Attempt) error {
	status, next := entities.DeliveryDelivered, a.At
	if a.Error != "" {
		status, next = entities.DeliveryFailed, a.At
		if !a.Next.IsZero() {
			status, next = entities.DeliveryPending, a.Next
		}
	}
	_, err := s.db.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, status_code = ?, error = ?, attempts = attempts + 1,
		last_attempt = ?, next_attempt = ? WHERE id = ?`, status, a.StatusCode, a.Error, ms2(a.At), ms2(next), id)
	return err
}

// PruneDeliveries deletes the deliveries that ended (delivered or
// failed) before cutoff, their last attempt's time, oldest first, and
// returns how many it deleted; pending ones stay, however old. It deletes
// batch a statement (≤ 0, or more than PruneBatch: PruneBatch), as Prune
// does (a receiver down for weeks leaves many), at most maxBatches
// statements (0: as many as it takes; more then says some are left). The
// index webhook_deliveries_ended (migration 23) gives each batch its rows
// alone, in order.
func (s *Store) PruneDeliveries(ctx context.Context, cutoff time.Time, batch, maxBatches int) (n int64, more bool, err error) {
	if batch <= 0 || batch > PruneBatch {
		batch = PruneBatch
	}
	return s.deleteBatches(ctx, `DELETE FROM webhook_deliveries WHERE id IN (`+endedDeliveries+`)`, ms2(cutoff), batch, maxBatches)
}

// endedDeliveries is the oldest ?2 deliveries that ended (delivered or
// failed: not pending) before ?1: a range of webhook_deliveries_ended, in
// its order. Its status condition must stay the index's, as written.
const endedDeliveries = `SELECT id FROM webhook_deliveries WHERE status <> 'pending'
	AND COALESCE(last_attempt, created) < ? ORDER BY COALESCE(last_attempt, created), id LIMIT ?`

// SiteClient is the domain and client name of the site a task's target
// belongs to (a site, or a backup's site); "" for none.
func (s *Store) SiteClient(ctx context.Context, kind string, id int64) (domain, client string, err error) {
	q := ``
	switch kind {
	case entities.TargetSite:
		q = `SELECT x.domain, COALESCE(c.name, '') FROM sites x LEFT JOIN clients c ON c.id = x.client_id WHERE x.id = ?`
	case entities.TargetBackup:
		q = `SELECT x.domain, COALESCE(c.name, '') FROM backups b JOIN sites x ON x.id = b.site_id LEFT JOIN clients c ON c.id = x.client_id WHERE b.id = ?`
	default:
		return "", "", nil
	}
	err = s.db.QueryRowContext(ctx, q, id).Scan(&domain, &client)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return domain, client, err
}
