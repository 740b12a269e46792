package apptest

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

func FileGroup(t *testing.T, p string) (string, string, os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	return u.Username, g.Name, fi.Mode()
}
