package supervise

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// MarkerVar is the environment variable that tags every process the
// appliance starts, with the appliance's data dir as its value.
const MarkerVar = "AURORABOX_APPLIANCE"

// RoleVar names, in the environment of every component the supervisor
// starts, the component's name. The processes that carry the marker but no
// role are what the components started outside their process groups:
// executors and their tasks, which outlive a supervisor's crash so that the
// agent can recover them.
const RoleVar = "AURORABOX_ROLE"

// SignalOrphaned is the death signal of a component that must outlive the
// others when the supervisor dies (ZooKeeper, whose clients' sessions and
// ephemeral nodes would otherwise stay until they expire, delaying the next
// start): on it, the component waits for AwaitComponentsGone before it
// stops.
const SignalOrphaned = syscall.SIGUSR1

// AwaitComponentsGone waits until no other component of the appliance
// marked by marker runs, for at most timeout.
func AwaitComponentsGone(marker string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for len(FindComponents(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// Marker returns the MarkerVar=value entry for the appliance at dataDir.
func Marker(dataDir string) string { return MarkerVar + "=" + dataDir }

// Find lists the pids of processes whose environment contains marker
// (exactly, as one NUL-separated entry), other than this process.
func Find(marker string) []int { return find(marker, false) }

// FindComponents is Find restricted to component processes (those that
// also carry RoleVar).
func FindComponents(marker string) []int { return find(marker, true) }

func find(marker string, components bool) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	want, role := []byte(marker), []byte(RoleVar+"=")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(e)
		if err != nil {
			continue // gone, or not ours to read
		}
		marked, hasRole := false, false
		for _, kv := range bytes.Split(env, []byte{0}) {
			marked = marked || bytes.Equal(kv, want)
			hasRole = hasRole || bytes.HasPrefix(kv, role)
		}
		if marked && (hasRole || !components) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the ")" that ends the command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// Sweep sends SIGTERM to every process carrying marker, waits up to grace for
// them to exit, then SIGKILLs the rest. It returns how many it found.
func Sweep(marker string, grace time.Duration) int {
	return sweep(func() []int { return Find(marker) }, grace)
}

// SweepComponents is Sweep restricted to component processes: what a
// crashed supervisor left of its components, leaving executors and tasks to
// the agent that recovers them.
func SweepComponents(marker string, grace time.Duration) int {
	return sweep(func() []int { return FindComponents(marker) }, grace)
}

// SweepExcept is Sweep leaving alone the processes for which spare
// reports true.
func SweepExcept(marker string, grace time.Duration, spare func(pid int) bool) int {
	return sweep(func() []int {
		var out []int
		for _, pid := range Find(marker) {
			if !spare(pid) {
				out = append(out, pid)
			}
		}
		return out
	}, grace)
}

func sweep(find func() []int, grace time.Duration) int {
	pids := find()
	if len(pids) == 0 {
		return 0
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if len(find()) == 0 {
			return len(pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range find() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for i := 0; i < 100 && len(find()) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return len(pids)
}

// InGroups returns whether a process belongs to one of the process groups
// led by pgids (the components', each started in its own group).
func InGroups(pgids []int) func(pid int) bool {
	return func(pid int) bool {
		g, err := syscall.Getpgid(pid)
		return err == nil && slices.Contains(pgids, g)
	}
}
