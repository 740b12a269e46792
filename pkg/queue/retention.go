package queue

import (
	"context"
	"time"

	"github.com/aegir-project/aegir/pkg/store"
)

// BackupsToPrune selects the backups the backup garbage collection should
// delete: per site, every backup beyond the newest keep, and every backup
// created before now − maxAge. The newest backup of a site is never
// selected, however old (it may be all that is left of a disabled or
// deleted site). keep ≤ 0 means no count limit, maxAge ≤ 0 no age limit.
// It only reads the backups table; deleting the files and rows is the
// caller's work (backup.delete tasks). The ids come in ascending order.
func BackupsToPrune(ctx context.Context, st *store.Store, keep int, maxAge time.Duration, now time.Time) ([]int64, error) {
	if keep <= 0 && maxAge <= 0 {
		return []int64{}, nil
	}
	cutoff := int64(-1) << 62 // no age limit: nothing is that old
	if maxAge > 0 {
		cutoff = now.Add(-maxAge).UnixMilli()
	}
	rows, err := st.DB().QueryContext(ctx, `SELECT id FROM (
		SELECT id, created, ROW_NUMBER() OVER (PARTITION BY site_id ORDER BY created DESC, id DESC) AS n FROM backups)
		WHERE n > 1 AND ((?1 > 0 AND n > ?1) OR created < ?2)
		ORDER BY id`, keep, cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
