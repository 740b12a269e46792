package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/aegir-project/aegir/pkg/entities"
)

// SaveSiteStats records a site's statistics.
func (s *Store) SaveSiteStats(ctx context.Context, siteID int64, st entities.SiteStats) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO site_stats (site_id, users, active_users, posts, comments, db_bytes, files_bytes, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (site_id) DO UPDATE SET users = excluded.users, active_users = excluded.active_users, posts = excluded.posts,
		comments = excluded.comments, db_bytes = excluded.db_bytes, files_bytes = excluded.files_bytes, updated = excluded.updated`,
		siteID, st.Users, st.ActiveUsers, st.Posts, st.Comments, st.DBBytes, st.FilesBytes, s.now())
	return err
}

// SiteStats returns a site's last statistics, nil when none were read yet.
func (s *Store) SiteStats(ctx context.Context, v *entities.Site) (*entities.SiteStats, error) {
	st := &entities.SiteStats{Domain: v.Domain}
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT users, active_users, posts, comments, db_bytes, files_bytes, updated FROM site_stats WHERE site_id = ?`, v.ID).
		Scan(&st.Users, &st.ActiveUsers, &st.Posts, &st.Comments, &st.DBBytes, &st.FilesBytes, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	st.Updated = fromMs(updated)
	return st, err
}
