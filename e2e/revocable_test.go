//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// revocableConfig has a revocable service (rev: two instances of one cpu,
// which fit the agent's 3 revocable cpus), an ordinary one (plain), and a
// revocable one too big for the revocable cpus rev leaves (big: 1.5 cpus,
// which the ordinary cpus left would hold).
const revocableConfig = `
hello = Process(name = 'hello', cmdline = 'while true; do sleep 10; done')
jobs = [
  Service(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'rev', instances = 2, tier = 'revocable',
    task = SequentialTask(processes = [hello], resources = Resources(cpu = 1, ram = 16*MB, disk = 16*MB))),
  Service(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'plain',
    task = SequentialTask(processes = [hello], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))),
  Service(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'big', tier = 'revocable',
    task = SequentialTask(processes = [hello], resources = Resources(cpu = 1.5, ram = 16*MB, disk = 16*MB))),
]
`

// TestRevocableTierOnAppliance is issue 15's revocable item: the appliance's
// agent offers revocable cpus (revocable_cpus, 3 by default), a job of the
// revocable tier lands on them (its tasks' cpus are revocable in the
// master's state), and an ordinary job never does; a revocable task that
// does not fit the revocable cpus left stays PENDING though ordinary cpus
// are free, and its job page says why (issue 15's pending-reason item).
func TestRevocableTierOnAppliance(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "revocable.aurora")
	if err := os.WriteFile(cfg, []byte(revocableConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustClient("job", "create", "devcluster/www-data/test/rev", cfg, "--wait-until", "RUNNING")
	c.mustClient("job", "create", "devcluster/www-data/test/plain", cfg, "--wait-until", "RUNNING")

	master := "http://" + c.component("master").Address
	var state string
	waitFor(t, "3 RUNNING tasks in the master's state", 60*time.Second, func() bool {
		out, err := exec.Command("curl", "-fsS", master+"/master/state").Output()
		if err != nil {
			return false
		}
		state = string(out)
		return mustJQ(t, state, `[.frameworks[].tasks[] | select(.state == "TASK_RUNNING")] | length`) == "3"
	})
	if got := mustJQ(t, state, `.slaves[0].revocable_resources.cpus`); got != "3" {
		t.Errorf("agent's revocable cpus: %s, want 3", got)
	}
	got := mustJQ(t, state, `[.frameworks[].tasks[] | {job: (.name | split("/") | last), revocable: .revocable_resources.cpus, cpus: .resources.cpus}] | sort_by(.job)`)
	want := `[{"job":"plain","revocable":0,"cpus":0.1},{"job":"rev","revocable":1,"cpus":1},{"job":"rev","revocable":1,"cpus":1}]`
	if got != want {
		t.Errorf("tasks' revocable cpus in the master's state:\n got %s\nwant %s", got, want)
	}

	c.mustClient("job", "create", "devcluster/www-data/test/big", cfg)
	want = `<span class="pending-reason" title="why the task is pending">Insufficient: CPU</span>`
	var page string
	waitFor(t, "big's job page to show its pending reason", 30*time.Second, func() bool {
		page = c.curl("/scheduler/www-data/test/big")
		return strings.Contains(page, want)
	})
	if st := mustJQ(t, c.statusJSON("devcluster/www-data/test/big"), `[.[0].active[].status]`); st != `["PENDING"]` {
		t.Errorf("big's tasks: %s, want one PENDING", st)
	}
}
