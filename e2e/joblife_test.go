//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
)

// jobLifeConfig has a two-instance service (hello), a two-instance batch
// job that finishes at once (once), and a cron job that fires once a year
// (yearly).
const jobLifeConfig = `
hello = Process(name = 'hello', cmdline = 'while true; do echo hello; sleep 10; done')
done = Process(name = 'done', cmdline = 'echo done')
res = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB)

jobs = [
  Service(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'hello', instances = 2,
    task = SequentialTask(processes = [hello], resources = res)),
  Job(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'once', instances = 2,
    task = SequentialTask(processes = [done], resources = res)),
  Job(cluster = 'devcluster', role = 'www-data', environment = 'test', name = 'yearly',
    cron_schedule = '0 0 1 1 *', task = SequentialTask(processes = [done], resources = res)),
]
`

// jobList is `aurora job list devcluster/www-data`, one key a line.
func (c *cluster) jobList() string {
	c.t.Helper()
	return strings.TrimSpace(c.mustClient("job", "list", "devcluster/www-data").stdout)
}

// TestJobLifecycleOnAppliance is issue 15's everyday loop: a job killed
// with killall (batched or --no-batching) or whose batch instances all
// FINISHED can be created again at once, and job list shows only the jobs
// with active tasks and the cron jobs, as Aurora 0.11 does.
func TestJobLifecycleOnAppliance(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "joblife.aurora")
	if err := os.WriteFile(cfg, []byte(jobLifeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	hello, once, yearly := "devcluster/www-data/test/hello", "devcluster/www-data/test/once", "devcluster/www-data/test/yearly"

	c.mustClient("job", "create", hello, cfg, "--wait-until", "RUNNING")
	if r := c.aurora("job", "create", hello, cfg); r.code != 10 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("create of a running job: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, kill := range [][]string{{"job", "killall", hello}, {"job", "killall", "--no-batching", hello}} {
		if r := c.mustClient(kill...); r.stdout != "Job killall succeeded\n" {
			t.Fatalf("%s: %q", strings.Join(kill, " "), r.stdout)
		}
		if got := c.jobList(); got != "" {
			t.Fatalf("job list after %s: %q", strings.Join(kill, " "), got)
		}
		r := c.aurora("job", "create", hello, cfg, "--wait-until", "RUNNING")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Job create succeeded") {
			t.Fatalf("create after %s: exit %d\n%s%s", strings.Join(kill, " "), r.code, r.stdout, r.stderr)
		}
	}
	// The killed tasks are history, still shown by job status.
	if got := mustJQ(t, c.statusJSON(hello), `.[0] | [(.active | length), (.inactive | map(select(.status == "KILLED")) | length)]`); got != "[2,4]" {
		t.Fatalf("hello's active and KILLED tasks: %s", got)
	}

	// A batch job whose instances all FINISHED.
	c.mustClient("job", "create", once, cfg)
	var js string
	waitFor(t, "both instances of once FINISHED", 60*time.Second, func() bool {
		js = c.statusJSON(once)
		return mustJQ(t, js, `[.[].active[]] | length == 0`) == "true" &&
			mustJQ(t, js, `[.[].inactive[] | select(.status == "FINISHED")] | length`) == "2"
	})
	c.mustClient("cron", "schedule", yearly, cfg)
	if got := c.jobList(); got != hello+"\n"+yearly {
		t.Fatalf("job list with hello running, once finished and yearly scheduled: %q", got)
	}
	if r := c.aurora("job", "create", once, cfg); r.code != 0 {
		t.Fatalf("create of a finished batch job: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the new run of once FINISHED", 60*time.Second, func() bool {
		return mustJQ(t, c.statusJSON(once), `[.[].inactive[] | select(.status == "FINISHED")] | length`) == "4"
	})

	// A restarted scheduler agrees.
	sched := c.component("scheduler")
	syscall.Kill(sched.PID, syscall.SIGKILL)
	waitFor(t, "the scheduler restarted and healthy", 90*time.Second, func() bool {
		s := c.component("scheduler")
		return s.PID != sched.PID && s.Health == status.Healthy
	})
	poll(t, "the client to reach the restarted scheduler", 90*time.Second, func() bool {
		return c.aurora("job", "list", "devcluster/www-data").code == 0
	})
	if got := c.jobList(); got != hello+"\n"+yearly {
		t.Fatalf("job list after a scheduler restart: %q", got)
	}
	c.mustClient("job", "killall", hello)
	if got := c.jobList(); got != yearly {
		t.Fatalf("job list with only the cron job left: %q", got)
	}
	c.mustClient("job", "create", hello, cfg, "--wait-until", "RUNNING")
}
