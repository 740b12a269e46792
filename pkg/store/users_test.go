package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

func TestUsersAndTokens(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.Now = func() time.Time { return now }

	if err := s.AddUser(ctx, &entities.User{Name: "ann", Client: "acme", Role: entities.RoleClient}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, &entities.User{Name: "ann", Client: "acme", Role: entities.RoleClient}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second ann: %v, want a conflict", err)
	}
	if err := s.AddUser(ctx, &entities.User{Name: "bob", Client: "nope", Role: entities.RoleClient}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user of an unknown client: %v, want not found", err)
	}
	if err := s.AddUser(ctx, &entities.User{Name: "carl", Role: entities.RoleClient}); err == nil {
		t.Fatal("a client user without a client was recorded")
	}
	if err := s.AddUser(ctx, &entities.User{Name: "root", Role: entities.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "acme"); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete a client with a user: %v, want a conflict", err)
	}

	tok, secret, err := s.CreateToken(ctx, "ann", entities.ScopeWrite, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q: too short or without its prefix", secret)
	}
	var stored string
	if err := s.db.QueryRow(`SELECT hash FROM tokens WHERE id = ?`, tok.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, secret[len(tokenPrefix):]) || stored != hashToken(secret) {
		t.Fatalf("stored %q: not the secret's SHA-256", stored)
	}
	got, u, err := s.Authenticate(ctx, secret)
	if err != nil || got.ID != tok.ID || u.Name != "ann" || u.Client != "acme" || u.Admin() || !got.Live(now) {
		t.Fatalf("authenticate: %+v %+v %v", got, u, err)
	}
	if got.Live(now.Add(2 * time.Hour)) {
		t.Fatal("token live after its expiry")
	}
	if _, _, err := s.Authenticate(ctx, secret+"x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wrong secret: %v, want not found", err)
	}
	if u, err := s.GetUser(ctx, "ann"); err != nil || u.Tokens != 1 {
		t.Fatalf("ann: %+v %v, want 1 live token", u, err)
	}

	if err := s.RecordRequest(ctx, &entities.AuditEntry{Time: now, User: "ann", TokenID: tok.ID, Method: "GET", Path: "/api/sites", Status: 200}); err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(ctx, 0)
	if err != nil || len(log) != 1 || log[0].User != "ann" || log[0].TokenID != tok.ID || log[0].Status != 200 || log[0].TaskID != 0 {
		t.Fatalf("audit log: %+v %v", log, err)
	}
	if got, _, _ := s.Authenticate(ctx, secret); got.LastUsed == nil || !got.LastUsed.Equal(now) {
		t.Fatalf("last used %v, want %v", got.LastUsed, now)
	}

	if r, err := s.RevokeToken(ctx, tok.ID); err != nil || r.Revoked == nil {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if got, _, _ := s.Authenticate(ctx, secret); got.Live(now) {
		t.Fatal("revoked token live")
	}
	if _, err := s.RevokeToken(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if err := s.DeleteUser(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if ts, err := s.ListTokens(ctx, ""); err != nil || len(ts) != 0 {
		t.Fatalf("tokens after the user's delete: %+v %v", ts, err)
	}
	if log, _ := s.AuditLog(ctx, 0); len(log) != 1 || log[0].User != "ann" {
		t.Fatalf("audit log after the user's delete: %+v", log)
	}
	if err := s.DeleteUser(ctx, "ann"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete again: %v", err)
	}
}

func TestQueueSiteTaskIfFree(t *testing.T) {
	s := open(t)
	fixture(t, s)
	ctx := context.Background()
	install, err := s.AddSite(ctx, &entities.Site{Domain: "a.test", Platform: "p1", DBServer: "web1", HTTPS: "off", Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.GetSite(ctx, "a.test")
	if err != nil {
		t.Fatal(err)
	}
	var held *HeldError
	if _, err := s.QueueSiteTaskIfFree(ctx, v, entities.TaskSiteBackup, nil); !errors.As(err, &held) || held.Holder.ID != install.ID {
		t.Fatalf("beside the queued install: %v, want held by task %d", err, install.ID)
	}
	if _, err := s.db.Exec(`UPDATE tasks SET status = 'success' WHERE id = ?`, install.ID); err != nil {
		t.Fatal(err)
	}
	b, err := s.QueueSiteTaskIfFree(ctx, v, entities.TaskSiteBackup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueSiteTaskIfFree(ctx, v, entities.TaskSiteCron, nil); !errors.As(err, &held) || held.Holder.ID != b.ID {
		t.Fatalf("beside the queued backup: %v", err)
	}
	ts, err := s.ListTasks(ctx, TaskFilter{TargetKind: entities.TargetSite, TargetID: v.ID})
	if err != nil || len(ts) != 2 {
		t.Fatalf("tasks: %d %v, want the install and one backup", len(ts), err)
	}
}
