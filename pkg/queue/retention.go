package queue

import (
	"context"
	"time"

	"github.com/aegir-project/aegir/pkg/store"
)

// BackupsToPrune selects the backups the backup garbage collection should
// delete: per site, every backup beyond the newest keep, and every backup
// created before now − maxAge; per client with a quota of backups
// (aegir client edit --quota-backups N), the oldest backups of its sites
// beyond N of them. The newest backup of a site is never
// selected, however old (it may be all that is left of a disabled or
// deleted site). keep ≤ 0 means no count limit, maxAge ≤ 0 no age limit.
// It only reads (Store.PrunableBackups); deleting the files and rows is the
// caller's work (backup.delete tasks). The ids come in ascending order.
func BackupsToPrune(ctx context.Context, st *store.Store, keep int, maxAge time.Duration, now time.Time) ([]int64, error) {
	var before time.Time // zero: no age limit
	if maxAge > 0 {
		before = now.Add(-maxAge)
	}
	return st.PrunableBackups(ctx, keep, before)
}
