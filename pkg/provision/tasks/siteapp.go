package tasks

import (
	"context"
)

// appInstall writes the site's settings and runs the platform's installer.
func appInstall(ctx context.Context, s *site, u *undo) error { return nil }

// appVerify re-writes the site's settings from the record.
func appVerify(ctx context.Context, s *site) error { return nil }

// appRemove removes the site's settings and files.
func appRemove(ctx context.Context, s *site) error { return nil }

// appLoginLink makes a one-time login link.
func appLoginLink(ctx context.Context, s *site) (string, error) { return "", nil }
