package cli_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// TestForgetAMasterGoneForGood: ma has a backup and a delete tied to it
// queued by mb's keep-N clean-up; mb refuses to forget itself and ma
// while ma holds a live lease, then forgets ma: the delete is cancelled,
// so is a restore tied to ma, which held the site's later task; ma's
// backup records are gone (the archives stay), mb's next dispatch
// queues nothing for ma, and a later task on the site runs on mb.
func TestForgetAMasterGoneForGood(t *testing.T) {
	t.Parallel()
	a, b, st, v := twoMastersKeepingOne(t, "gone.test")
	ctx := context.Background()
	backups := archivesOnMa(t, st, a.home, v, 2)
	deletes := func() []*entities.Task { return backupDeletes(t, st) }
	if errs, code := aegirProcess(t, b, "hosting", "dispatch"); code != 0 {
		t.Fatalf("dispatch on mb: exit %d\n%s", code, errs)
	}
	ts := deletes()
	if len(ts) != 1 || ts[0].Master != "ma" || ts[0].Status != entities.TaskQueued {
		t.Fatalf("after mb's dispatch: %+v, want one backup.delete queued for ma", ts)
	}
	tied := ts[0]
	newest := backups[1].ID

	out, err := aegirCmd(t, b, "master", "list", "--format", "csv").Output()
	if err != nil || !strings.Contains(string(out), "\nma,") || !strings.Contains(string(out), ",0,1,2,no\n") || !strings.Contains(string(out), ",yes\n") {
		t.Errorf("master list on mb: %v\n%s", err, out)
	}

	// A restore of ma's newest archive, tied to ma (as site restore
	// queues it on mb): a later task on the site waits behind it.
	restore, err := st.QueueTaskFor(ctx, "ma", entities.TaskSiteRestore, "site", v.ID, "gone.test", map[string]string{"backup": strconv.FormatInt(newest, 10)})
	if err != nil {
		t.Fatal(err)
	}
	later, err := st.QueueTask(ctx, entities.TaskSiteVerify, "site", v.ID, "gone.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if errs, code := aegirProcess(t, b, "hosting", "dispatch"); code != 0 {
		t.Fatalf("second dispatch on mb: exit %d\n%s", code, errs)
	}
	if w, err := st.GetTask(ctx, later.ID); err != nil || w.Status != entities.TaskQueued {
		t.Fatalf("task %d on the site behind the tied restore, after mb's dispatch: %+v, %v; want queued", later.ID, w, err)
	}

	// Refused: this master; ma while it holds a task under a live lease.
	if errs, code := aegirProcess(t, b, "master", "forget", "mb", "-y"); code != 2 || !strings.Contains(errs, "master mb is this master") {
		t.Errorf("forget mb on mb: exit %d\n%s", code, errs)
	}
	live, err := st.TestInsert(`INSERT INTO tasks (type, target_kind, target_id, target, status, options, created, started, worker, lease_until) VALUES ('server.verify', 'server', 1, 'web1', 'processing', '{}', ?, ?, '1@ma/gone', ?)`,
		time.Now().UnixMilli(), time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if errs, code := aegirProcess(t, b, "master", "forget", "ma", "-y"); code != 2 || !strings.Contains(errs, "master ma holds task") || !strings.Contains(errs, "it is alive; stop it first") {
		t.Errorf("forget ma under a live lease: exit %d\n%s", code, errs)
	}
	if got, err := st.GetTask(ctx, tied.ID); err != nil || got.Status != entities.TaskQueued {
		t.Fatalf("task %d after a refused forget: %+v, %v", tied.ID, got, err)
	}
	if _, err := st.TestExec(`UPDATE tasks SET status = 'error', finished = started WHERE id = ?`, live); err != nil {
		t.Fatal(err)
	}
	if errs, code := aegirProcess(t, b, "master", "forget", "nosuch", "-y"); code != 3 {
		t.Errorf("forget of an unknown master: exit %d\n%s", code, errs)
	}

	errs, code := aegirProcess(t, b, "master", "forget", "ma", "-y")
	if code != 0 || !strings.Contains(errs, "2 queued tasks tied to it cancelled") || !strings.Contains(errs, "2 backup records deleted") {
		t.Fatalf("forget ma on mb: exit %d\n%s", code, errs)
	}
	for _, id := range []int64{tied.ID, restore.ID} {
		got, err := st.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != entities.TaskCancelled || !strings.Contains(got.Error, "master ma was forgotten") {
			t.Errorf("tied task %d (%s) after the forget: %s: %q", id, got.Type, got.Status, got.Error)
		}
	}
	if left, err := st.ListBackups(ctx, "gone.test"); err != nil || len(left) != 0 {
		t.Errorf("backups left: %+v, %v", left, err)
	}
	for _, bk := range backups {
		if _, err := os.Stat(bk.Path); err != nil {
			t.Errorf("the forget touched the archive %s: %v", bk.Path, err)
		}
	}

	// mb's next dispatch queues no delete for ma, and the later task on
	// the site runs on mb.
	if errs, code := aegirProcess(t, b, "hosting", "dispatch"); code != 0 {
		t.Logf("dispatch on mb after the forget: exit %d\n%s", code, errs)
	}
	if ts := deletes(); len(ts) != 1 {
		t.Errorf("backup.delete tasks after the forget and a dispatch: %+v, want the cancelled one alone", ts)
	}
	ran, err := st.GetTask(ctx, later.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ran.Status == entities.TaskQueued || !strings.Contains(ran.Worker, "@mb") {
		t.Errorf("task %d on the site after the forget: %s by %q, want run by mb", ran.ID, ran.Status, ran.Worker)
	}
}
