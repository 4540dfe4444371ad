package supervise

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// bombScript is a bounded fork bomb: a binary tree of bash processes of the
// given depth (about 4·2^depth processes: each node, and a loop per child
// that forks the child again whenever it dies), ignoring SIGTERM, whose
// leaves sleep.
const bombScript = `trap '' TERM
d=${1:-0}
if [ "$d" -le 0 ]; then exec sleep 300; fi
for i in 1 2; do (trap '' TERM; while :; do bash "$0" $((d-1)); done) & done
wait
`

// startBomb starts the bomb with marker in its environment and waits until
// it has at least min processes. It kills what is left when the test ends.
func startBomb(t *testing.T, marker string, depth, min int) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "bomb.sh")
	if err := os.WriteFile(script, []byte(bombScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, strconv.Itoa(depth))
	cmd.Env = append(os.Environ(), marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() {
		// Whatever the outcome, nothing of the bomb outlives the test.
		for range 100 {
			left := Find(marker)
			if len(left) == 0 {
				return
			}
			for _, p := range left {
				syscall.Kill(p, syscall.SIGSTOP)
			}
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("could not clean up the fork bomb: %v", Find(marker))
	})
	waitFor(t, "the fork bomb to grow", 30*time.Second, func() bool { return len(Find(marker)) >= min })
}

// Sweep ends a fork bomb that ignores SIGTERM and forks a process again
// whenever one is killed: outside a cgroup nothing freezes it, so Sweep
// stops every process before it kills any.
func TestSweepEndsForkBomb(t *testing.T) {
	marker := Marker(t.TempDir())
	startBomb(t, marker, 6, 240)
	n := Sweep(marker, 100*time.Millisecond)
	left := Find(marker)
	t.Logf("Sweep found %d processes; %d left", n, len(left))
	if len(left) > 0 {
		t.Fatalf("%d processes of the fork bomb survived Sweep", len(left))
	}
}
