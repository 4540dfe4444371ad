//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMshCannotRunAsRoot: any local process can be a Mesos framework, but
// one that did not authenticate cannot run a task as root. mesos-go's msh,
// whose default user is root, ran `id` as uid 0 on `aurorabox up`; now the
// master refuses its framework (Mesos' root_submissions ERROR), nothing of
// it runs, and an Aurora job (whose executor runs as root: the scheduler
// authenticates) still runs beside it.
func TestMshCannotRunAsRoot(t *testing.T) {
	msh, _ := mesosGoTools(t)
	c := newCluster(t)
	c.up()
	master := c.component("master").Address

	cfg := filepath.Join(c.dir, "beside.aurora")
	if err := os.WriteFile(cfg, []byte(mesosGoConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	key := "devcluster/www-data/test/beside"
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")

	ctx, cancel := context.WithTimeout(context.Background(), mshTimeout)
	defer cancel()
	shell := exec.CommandContext(ctx, msh, "-master", master, "--", "id")
	out, err := shell.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("msh -- id did not end in %s\n%s", mshTimeout, out)
	}
	t.Logf("msh -master %s -- id: %v\n%s", master, err, out)
	if strings.Contains(string(out), "uid=0") {
		t.Fatalf("msh ran id as root:\n%s", out)
	}
	if strings.Contains(string(out), "TASK_FINISHED") {
		t.Fatalf("msh's task ran:\n%s", out)
	}
	// Nothing of msh's ran: every sandbox on the agent is the Aurora
	// task's, and no stdout anywhere says uid 0.
	outs, _ := filepath.Glob(filepath.Join(c.dir, "mesos", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stdout"))
	for _, p := range outs {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), "uid=0") {
			t.Errorf("%s says uid 0: %q", p, b)
		}
		if !strings.Contains(p, "thermos-") {
			t.Errorf("a sandbox that is not the Aurora task's: %s", p)
		}
	}
	if st := c.taskStatus(key, 0); st != "RUNNING" {
		t.Errorf("the Aurora task is %s after msh, want RUNNING", st)
	}
	// The Aurora job's executor, which runs as root, still starts: a new
	// job runs too.
	after := filepath.Join(c.dir, "after.aurora")
	if err := os.WriteFile(after, []byte(strings.Replace(mesosGoConfig, "name = 'beside'", "name = 'after'", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustAurora("job", "create", "devcluster/www-data/test/after", after, "--wait-until", "RUNNING")
}
