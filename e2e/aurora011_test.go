//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkTimesConfig: a service whose shell health check appends the time
// (ms) of each check to "checks" in its sandbox, first after 10 s; and one
// whose check fails.
const checkTimesConfig = `
sleeper = Process(name = 'sleeper', cmdline = 'sleep 600')
task = SequentialTask(processes = [sleeper], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))
jobs = [
  Service(cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'checked', task = task,
    health_check_config = HealthCheckConfig(initial_interval_secs = 10, interval_secs = 1,
      health_checker = HealthCheckerConfig(shell = ShellHealthChecker(shell_command = 'date +%s%3N >> checks')))),
  Service(cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'sick', task = task,
    health_check_config = HealthCheckConfig(initial_interval_secs = 2, interval_secs = 1,
      health_checker = HealthCheckerConfig(shell = ShellHealthChecker(shell_command = 'exit 1')))),
]
`

// TestRunningBeforeFirstHealthCheck (issue 15): as in Aurora 0.11 a task
// is RUNNING once its processes are started; the first health check comes
// initial_interval_secs later (the check stamps its time in the sandbox,
// compared with the RUNNING event of job status --write-json); a failing
// check then fails the RUNNING task with "Failed health check! ...".
func TestRunningBeforeFirstHealthCheck(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "checked.aurora")
	if err := os.WriteFile(cfg, []byte(checkTimesConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	key := "devcluster/www-data/test/checked"
	if r := c.aurora("job", "create", key, cfg, "--wait-until", "RUNNING"); r.code != 0 {
		t.Fatalf("job create: %d %s", r.code, r.stderr)
	}
	checks := func() []string {
		m, _ := filepath.Glob(filepath.Join(c.dir, "mesos", "slaves", "*", "frameworks", "*", "executors", "*checked*", "runs", "latest", "sandbox", "checks"))
		if len(m) != 1 {
			return nil
		}
		b, _ := os.ReadFile(m[0])
		return strings.Fields(string(b))
	}
	if got := checks(); len(got) != 0 {
		t.Fatalf("the task was RUNNING only after %d health check(s); want RUNNING before the first", len(got))
	}
	var times []string
	waitFor(t, "the first health check", 60*time.Second, func() bool { times = checks(); return len(times) > 0 })
	first := mustInt(t, times[0])
	s, ok := c.jobStatusJQ(key, `[.[0].active[0].taskEvents[] | select(.status == "RUNNING") | .timestamp] | min`)
	if !ok {
		t.Fatal(s)
	}
	running := mustInt(t, s)
	// The scheduler stamps RUNNING when it gets the update, a little after
	// the executor sent it: allow 1 s of that lag.
	t.Logf("first health check %d ms after RUNNING (initial_interval_secs 10)", first-running)
	if first-running < 9000 {
		t.Fatalf("first health check at %d, RUNNING at %d: %d ms apart, want initial_interval_secs (10 s)", first, running, first-running)
	}

	sick := "devcluster/www-data/test/sick"
	if r := c.aurora("job", "create", sick, cfg); r.code != 0 {
		t.Fatalf("job create sick: %d %s", r.code, r.stderr)
	}
	waitFor(t, "the sick task to fail its health check after RUNNING", 60*time.Second, func() bool {
		return jqOK(c.statusJSON(sick), `any(.[0].inactive[]; [.taskEvents[].status] as $s | ($s | index("RUNNING")) != null and $s[-1] == "FAILED"
			and .taskEvents[-1].message == "Failed health check! Command 'exit 1' returned non-zero exit status 1 with output ''")`)
	})
	c.mustAurora("job", "killall", key)
	c.mustAurora("job", "killall", sick)
}

// TestContainerJobsRefused (issue 15): a job whose container cannot be
// honoured (tasks run on the host) is refused by `aurora job create` with
// the scheduler's INVALID_REQUEST message (exit 10) instead of running on
// the host: Docker with Aurora 0.11's wording, Docker parameters with
// "Docker parameters not allowed." (no --allow-docker-parameters), a Mesos
// image with ours. Nothing is created.
func TestContainerJobsRefused(t *testing.T) {
	c := newCluster(t)
	c.up()
	for _, tc := range []struct{ name, container, want string }{
		{"docker", "Container(docker = Docker(image = 'busybox'))", "The container type DOCKER is not allowed"},
		{"dockerparams", "Container(docker = Docker(image = 'busybox', parameters = [Parameter(name = 'volume', value = '/tmp:/tmp')]))", "Docker parameters not allowed."},
		{"mesosimage", "Mesos(image = DockerImage(name = 'busybox', tag = 'latest'))", "Container images are not supported"},
	} {
		cfg := filepath.Join(c.dir, tc.name+".aurora")
		src := `
hello = Process(name = 'hello', cmdline = 'sleep 600')
task = SequentialTask(processes = [hello], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))
jobs = [Service(cluster = 'devcluster', environment = 'test', role = 'www-data', name = '` + tc.name + `', task = task,
  container = ` + tc.container + `)]
`
		if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		key := "devcluster/www-data/test/" + tc.name
		r := c.aurora("job", "create", key, cfg)
		if r.code != 10 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("job create %s: exit %d\n%s%s\nwant exit 10 and %q", tc.name, r.code, r.stdout, r.stderr, tc.want)
		}
		t.Logf("%s: exit %d: %s", tc.name, r.code, strings.TrimSpace(r.stderr))
		if s, ok := c.jobStatusJQ(key, `[.[0].active[], .[0].inactive[]] | length`); ok && s != "0" {
			t.Errorf("job %s has %s task(s) after the refusal", tc.name, s)
		}
	}
}
