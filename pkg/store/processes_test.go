package store

import (
	"context"
	"reflect"
	"testing"
)

// TestTaskProcesses: process groups recorded by one master are read by
// another (by server and pid, those added twice once), removed one by one,
// and forgotten with their task, another task's staying.
func TestTaskProcesses(t *testing.T) {
	ctx := context.Background()
	a, b := openPair(t)
	p1 := TaskProcess{Host: "10.0.0.2:22", User: "aegir", PID: "4242", Name: "sleep"}
	p2 := TaskProcess{Host: "10.0.0.3:2222", User: "root", PID: "77", Name: "mysqldump"}
	for _, ps := range [][]TaskProcess{{p1, p2}, {p1}} {
		if err := a.AddTaskProcesses(ctx, 9, "m1", ps); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.AddTaskProcesses(ctx, 10, "m1", []TaskProcess{p1}); err != nil {
		t.Fatal(err)
	}
	got, err := b.TaskProcesses(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Master != "m1" || got[i].Started.IsZero() {
			t.Fatalf("record %+v: want master m1 and a start time", got[i])
		}
	}
	names := func(ps []TaskProcess) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Host+" "+p.User+" "+p.PID+" "+p.Name)
		}
		return out
	}
	if want := names([]TaskProcess{p1, p2}); !reflect.DeepEqual(names(got), want) {
		t.Fatalf("task 9's records: %v, want %v", names(got), want)
	}
	if err := b.RemoveTaskProcesses(ctx, 9, []TaskProcess{p2}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.TaskProcesses(ctx, 9); err != nil || !reflect.DeepEqual(names(got), names([]TaskProcess{p1})) {
		t.Fatalf("after removing one: %v %v", names(got), err)
	}
	if err := b.ForgetTaskProcesses(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if got, err := a.TaskProcesses(ctx, 9); err != nil || len(got) != 0 {
		t.Fatalf("after forgetting the task: %v %v", names(got), err)
	}
	if got, err := a.TaskProcesses(ctx, 10); err != nil || len(got) != 1 {
		t.Fatalf("another task's records: %v %v", names(got), err)
	}
}
