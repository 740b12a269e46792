package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a buffer written by one goroutine and read by another
// (the external tests' site logs --follow too).
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// site logs --follow prints whole lines: a line caught half-written is
// printed once it ends, under its log's name, not cut in two.
func TestSiteLogsFollowWholeLines(t *testing.T) {
	a := siteState(t)
	if err := runSiteInstall(&SiteInstallOptions{App: a, Domain: "a.test", Platform: "wp", Queue: true}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(a.cfg.GetString("php_fpm.runtime_dir"), "sites", "a.test", "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	access, errLog := filepath.Join(dir, "access.log"), filepath.Join(dir, "error.log")
	for _, f := range []string{access, errLog} {
		if err := os.WriteFile(f, []byte("old line\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appendTo := func(f, s string) {
		t.Helper()
		w, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	a.ctx = ctx
	var out SyncBuffer
	a.IO.Out = &out
	done := make(chan error, 1)
	go func() {
		done <- runSiteLogs(&SiteLogsOptions{App: a, Domain: "a.test", Follow: true, Lines: 0, Poll: 10 * time.Millisecond})
	}()
	wait := func(want string) {
		t.Helper()
		for i := 0; i < 1000 && !strings.Contains(out.String(), want); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("site logs --follow printed %q, want %q", out.String(), want)
		}
	}
	// Until the follower prints a line, it may not have read the sizes.
	for i := 0; !strings.Contains(out.String(), "access: tick"); i++ {
		if i == 100 {
			t.Fatalf("site logs --follow printed %q", out.String())
		}
		appendTo(access, "tick\n")
		time.Sleep(50 * time.Millisecond)
	}
	// The error log's half line, then a line of the access log: once that
	// is printed, the follower has read the error log after it (the logs
	// are read in order, access first, at each look).
	appendTo(errLog, "half")
	appendTo(access, "second\n")
	wait("access: second")
	time.Sleep(50 * time.Millisecond) // more looks at the half line
	appendTo(errLog, " and the rest\n")
	wait("error: half and the rest\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Contains(got, "error: half\n") || strings.Contains(got, "error:  and the rest") || strings.Contains(got, "old line") {
		t.Fatalf("site logs --follow cut a line or printed an old one: %q", got)
	}
}
