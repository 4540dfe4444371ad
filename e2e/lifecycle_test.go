//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// TestRestartComponentKeepsTasks is the Vagrant guide's "rebuild one
// component and restart it": `aurorabox restart scheduler`, then `restart
// agent`, while a 3-instance service runs. Each comes back with a new pid,
// the others keep theirs, and every task keeps its id and its process (the
// agent takes its executors back from its checkpoints).
func TestRestartComponentKeepsTasks(t *testing.T) {
	c := newCluster(t)
	// The appliance runs from its own copy of the binary, which is then
	// replaced the way a rebuild replaces it (a new file renamed over the
	// old), so that the test can tell the new binary's processes apart.
	exe := filepath.Join(t.TempDir(), "aurorabox")
	install := func() {
		b, err := os.ReadFile(bin(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(exe+".new", exe); err != nil {
			t.Fatal(err)
		}
	}
	install()
	up := exec.Command(exe, "up", "--detach")
	up.Env = append(os.Environ(), "AURORABOX_DATA_DIR="+c.dir, "AURORABOX_PORTS=auto")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("up --detach: %v\n%s", err, out)
	}
	install() // make build
	onDisk := func(pid int) bool {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return err == nil && target == exe
	}
	cfg := filepath.Join(c.dir, "sleeper.aurora")
	os.WriteFile(cfg, []byte(fmt.Sprintf(pidService, "sleeper")), 0o644)
	key := "devcluster/www-data/test/sleeper"
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	want := c.snapshot(t, key)

	for _, name := range []string{"scheduler", "agent"} {
		before := map[string]int{}
		for _, s := range c.status().Components {
			before[s.Name] = s.PID
		}
		r := c.run("restart", name)
		if r.code != 0 || !strings.Contains(r.stdout, "restarted "+name) {
			t.Fatalf("restart %s: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
		for _, s := range c.status().Components {
			switch {
			case s.Health != status.Healthy:
				t.Fatalf("after restart %s: %s is %s", name, s.Name, s.Health)
			case s.Name == name && s.PID == before[s.Name]:
				t.Fatalf("restart %s: pid %d unchanged", name, s.PID)
			case s.Name != name && s.PID != before[s.Name]:
				t.Fatalf("restart %s also restarted %s", name, s.Name)
			case s.Name == name && !onDisk(s.PID):
				t.Fatalf("restarted %s does not run the binary on disk", name)
			case s.Name == "master" && onDisk(s.PID):
				t.Fatal("the master, never restarted, runs the new binary: the test cannot tell them apart")
			}
		}
		c.sameTasks(t, key, want, "restart "+name)
	}

	r := c.run("restart", "sheduler")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown component "sheduler"`) {
		t.Fatalf("unknown component: exit %d %s", r.code, r.stderr)
	}
}

// TestDestroy: without a terminal and without --yes, destroy refuses and
// deletes nothing; with --yes it stops everything (tasks too) and the data
// dir is gone.
func TestDestroy(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "sleeper.aurora")
	os.WriteFile(cfg, []byte(fmt.Sprintf(pidService, "sleeper")), 0o644)
	key := "devcluster/www-data/test/sleeper"
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	c.snapshot(t, key)

	r := c.run("destroy") // stdin is /dev/null
	if r.code != 1 || !strings.Contains(r.stderr, "stdin is not a terminal; pass --yes") {
		t.Fatalf("destroy without --yes: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if !c.status().Healthy {
		t.Fatal("destroy without --yes stopped the appliance")
	}
	r = c.run("destroy", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "stopped and deleted "+c.dir) {
		t.Fatalf("destroy --yes: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if left := supervise.Find(supervise.Marker(c.dir)); len(left) > 0 {
		t.Fatalf("processes left after destroy: %v", left)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir after destroy: %v", err)
	}
	// up --fresh on nothing just starts.
	r = c.run("up", "--detach", "--fresh", "--yes")
	if r.code != 0 {
		t.Fatalf("up --fresh: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
}
