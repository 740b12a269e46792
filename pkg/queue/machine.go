package queue

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"sync"
)

// machineID is Machine's, worked out once.
var machineID = sync.OnceValue(func() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, nerr := os.Readlink("/proc/self/ns/pid")
	if err != nil || nerr != nil || strings.TrimSpace(string(boot)) == "" || ns == "" {
		// Nothing tells this machine's processes apart from another's:
		// an id of this process alone, so that no other process's pid
		// is judged by it (the lease decides).
		var b [6]byte
		_, _ = rand.Read(b[:])
		return "p" + hex.EncodeToString(b[:])
	}
	mid, _ := os.ReadFile("/etc/machine-id") // absent in many containers: ""
	return short(strings.TrimSpace(string(mid))) + "-" + short(strings.TrimSpace(string(boot))) + "-" + short(ns)
})

// short is 8 hex digits of s's hash.
func short(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// Machine names the processes whose pids this process sees: on Linux,
// "M-B-N", hashes of /etc/machine-id, of the kernel's boot id and of this
// process's PID namespace. Two processes with one Machine see each other's
// pids; two machines, or two containers or namespaces with PIDs of their
// own, have different ones even when their host names (and so their
// default master names) are the same, and after a reboot (a new B) the
// pids of before mean nothing. A task's worker records it (WorkerID), so
// that a rescuer judges a worker by its pid only when it is a process of
// this Machine. Elsewhere it is an id of this process alone: the lease
// decides.
func Machine() string { return machineID() }

// earlierBoot reports whether machine m is this machine before a reboot:
// its machine id, another boot.
func earlierBoot(m string) bool {
	mine := strings.Split(Machine(), "-")
	other := strings.Split(m, "-")
	return len(mine) == 3 && len(other) == 3 && mine[0] == other[0] && mine[1] != other[1]
}
