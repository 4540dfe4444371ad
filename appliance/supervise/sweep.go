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

// Marker returns the MarkerVar=value entry for the appliance at dataDir.
func Marker(dataDir string) string { return MarkerVar + "=" + dataDir }

// Find lists the pids of processes whose environment contains marker
// (exactly, as one NUL-separated entry), other than this process.
func Find(marker string) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	want := []byte(marker)
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
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				if !isZombie(pid) {
					pids = append(pids, pid)
				}
				break
			}
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
	return SweepExcept(marker, grace, nil)
}

// SweepExcept is Sweep leaving alone the processes for which spare
// reports true (nil spares none).
func SweepExcept(marker string, grace time.Duration, spare func(pid int) bool) int {
	find := func() []int {
		var out []int
		for _, pid := range Find(marker) {
			if spare == nil || !spare(pid) {
				out = append(out, pid)
			}
		}
		return out
	}
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
