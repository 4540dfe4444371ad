//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondFrameworkOnAppliance is issue 16's new user: mesos-go's own
// msh (built from the module's v0.0.11 sources) runs `echo hello` to
// completion beside a RUNNING Aurora job, although Aurora's scheduler
// holds the agent's offers for a minute: the master's offer timeout (10s
// with up) rescinds them and DRF offers them to msh, whose share is 0.
func TestSecondFrameworkOnAppliance(t *testing.T) {
	bin := t.TempDir()
	msh := filepath.Join(bin, "msh")
	if out, err := exec.Command("go", "build", "-o", msh, "github.com/mesos/mesos-go/api/v1/cmd/msh").CombinedOutput(); err != nil {
		t.Fatalf("building msh: %v\n%s", err, out)
	}
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "hello.aurora")
	if err := os.WriteFile(cfg, []byte(jobLifeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	hello := "devcluster/www-data/test/hello"
	c.mustClient("job", "create", hello, cfg, "--wait-until", "RUNNING")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, msh, "-master", c.component("master").Address, "--", "echo", "hello").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TASK_FINISHED") {
		t.Fatalf("msh after %s: %v\n%s", time.Since(start), err, out)
	}
	t.Logf("msh ran echo hello in %s", time.Since(start))
	if got := mustJQ(t, c.statusJSON(hello), `[.[].active[] | select(.status == "RUNNING")] | length`); got != "2" {
		t.Fatalf("hello's RUNNING tasks after msh: %s", got)
	}
}
