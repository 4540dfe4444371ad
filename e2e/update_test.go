//go:build e2e

package e2e

// The e2e tests of issue 7 that the reference runs against Aurora's
// Vagrant box (reference §2.4): rolling updates (add-only/kill-only, a
// scheduler kill -9 with pause and resume in the middle, a failing health
// check rolled back), quota, and partition awareness. Everything goes
// through the real `aurora` and `aurora_admin` commands and is read the way
// the reference's shell helpers (§2.2) read it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
)

// buildHTTPServer builds testdata/httpserver (the stand-in for
// http_example.py) into a directory that the role user can read and
// execute, and returns the binary's path.
func buildHTTPServer(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "abe2e-httpserver")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "httpserver")
	if b, err := exec.Command("go", "build", "-o", out, "./testdata/httpserver").CombinedOutput(); err != nil {
		t.Fatalf("go build httpserver: %v\n%s", err, b)
	}
	return out
}

// auroraConfig writes testdata/name to the cluster's dir with the test
// server's path in place of @HTTPSERVER@, and returns the file's path.
func (c *cluster) auroraConfig(name, server string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		c.t.Fatal(err)
	}
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "@HTTPSERVER@", server)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// clientTimeout bounds every client command here: a `--wait-until`,
// `update wait` or `--wait` that never ends must fail the test, not hang it.
const clientTimeout = 5 * time.Minute

// auroraClient runs the client as name (`aurora` or `aurora_admin`, a
// symlink to the binary, as c.aurora does) with the appliance's
// clusters.json, killing it after clientTimeout.
func (c *cluster) auroraClient(name string, args ...string) result {
	c.t.Helper()
	dir := filepath.Join(c.dir, "clientbin")
	os.MkdirAll(dir, 0o755)
	link := filepath.Join(dir, name)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(bin(c.t), link); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, link, args...)
	cmd.Env = append(os.Environ(), "AURORA_CONFIG_ROOT="+c.dir, "HOME="+c.dir)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		c.t.Fatalf("%s %s: no answer in %s\n%s%s", name, strings.Join(args, " "), clientTimeout, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (c *cluster) auroraT(args ...string) result {
	c.t.Helper()
	return c.auroraClient("aurora", args...)
}

func (c *cluster) auroraAdmin(args ...string) result {
	c.t.Helper()
	return c.auroraClient("aurora_admin", args...)
}

// mustAurora runs `aurora args...` and fails the test unless it exits 0.
func (c *cluster) mustAurora(args ...string) result {
	c.t.Helper()
	r := c.auroraT(args...)
	if r.code != 0 {
		c.t.Fatalf("aurora %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// column is `tail -n +2 | awk '{print $n}'`: the n-th whitespace field of
// every line after the first, one per line.
func column(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var vals []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) >= n {
			vals = append(vals, f[n-1])
		} else {
			vals = append(vals, "")
		}
	}
	return strings.Join(vals, "\n")
}

// activeUpdateState is assert_active_update_state's value: `aurora update
// list KEY --status active | tail -n +2 | awk '{print $3}'`. A failing
// client gives "exit N: stderr" (so that polls can tell).
func (c *cluster) activeUpdateState(key string) string {
	r := c.auroraT("update", "list", key, "--status", "active")
	if r.code != 0 {
		return fmt.Sprintf("exit %d: %s", r.code, r.stderr)
	}
	return column(r.stdout, 3)
}

// updateID is the reference's update id extraction: `aurora update list
// KEY --status STATUS | tail -n +2 | awk '{print $2}'`.
func (c *cluster) updateID(key, status string) string {
	c.t.Helper()
	r := c.mustAurora("update", "list", key, "--status", status)
	id := column(r.stdout, 2)
	if id == "" || strings.Contains(id, "\n") {
		c.t.Fatalf("update list %s --status %s: want one update, got\n%s", key, status, r.stdout)
	}
	return id
}

// updateStateByID is assert_update_state_by_id's value: `aurora update info
// KEY ID | grep 'Current status' | awk '{print $NF}'`.
func (c *cluster) updateStateByID(key, id string) string {
	c.t.Helper()
	r := c.mustAurora("update", "info", key, id)
	var vals []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, "Current status") {
			f := strings.Fields(l)
			vals = append(vals, f[len(f)-1])
		}
	}
	return strings.Join(vals, "\n")
}

// jobStatusJQ runs jq -r filter over `aurora job status KEY --write-json`;
// ok is false when either fails.
func (c *cluster) jobStatusJQ(key, filter string) (string, bool) {
	r := c.auroraT("job", "status", key, "--write-json")
	if r.code != 0 {
		return fmt.Sprintf("job status exit %d: %s", r.code, r.stderr), false
	}
	cmd := exec.Command("jq", "-r", filter)
	cmd.Stdin = strings.NewReader(r.stdout)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("jq %s: %v\n%s", filter, err, r.stdout), false
	}
	return strings.TrimSpace(string(out)), true
}

// taskStatus is assert_task_status's value: jq -r ".[0].active[ID].status".
func (c *cluster) taskStatus(key string, id int) string {
	s, _ := c.jobStatusJQ(key, fmt.Sprintf(".[0].active[%d].status", id))
	return s
}

// taskCounts is wait_until_task_counts' measure: the RUNNING and PENDING
// statuses among .[0].active[].status.
func (c *cluster) taskCounts(key string) (running, pending int, raw string) {
	s, ok := c.jobStatusJQ(key, ".[0].active[].status")
	if !ok {
		return -1, -1, s
	}
	for _, st := range strings.Fields(s) {
		switch st {
		case "RUNNING":
			running++
		case "PENDING":
			pending++
		}
	}
	return running, pending, strings.Join(strings.Fields(s), " ")
}

// poll is waitFor at a pace that suits running the client: once a second.
func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}

func (c *cluster) waitTaskCounts(t *testing.T, key string, running, pending int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, p, raw := c.taskCounts(key)
		if r == running && p == pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s to have %d RUNNING and %d PENDING; active: %s", timeout, key, running, pending, raw)
		}
		time.Sleep(time.Second)
	}
}

func (c *cluster) waitTaskStatus(t *testing.T, key string, id int, status string, timeout time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for {
		if last = c.taskStatus(key, id); last == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s/%d to be %s; it is %s\n%s", timeout, key, id, status, last, c.auroraT("job", "status", key).stdout)
		}
		time.Sleep(time.Second)
	}
}

// healthOf GETs /health of every RUNNING task of key on its health port
// and returns the answers.
func (c *cluster) healthOf(t *testing.T, key string) []string {
	t.Helper()
	out, ok := c.jobStatusJQ(key, `.[0].active[] | select(.status == "RUNNING") | "\(.assignedTask.slaveHost):\(.assignedTask.assignedPorts.health)"`)
	if !ok {
		t.Fatal(out)
	}
	var bodies []string
	for _, addr := range strings.Fields(out) {
		// As in Aurora 0.11, RUNNING means the processes were started, not
		// that the server listens yet: give it the time a health check would.
		var resp *http.Response
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if resp, err = http.Get("http://" + addr + "/health"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("GET %s/health: %v", addr, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
	}
	return bodies
}

// startUpdate runs `aurora update start KEY CONFIG args...` and checks the
// client's answer.
func (c *cluster) startUpdate(t *testing.T, key, cfg string, args ...string) {
	t.Helper()
	r := c.mustAurora(append([]string{"update", "start", key, cfg}, args...)...)
	if !strings.HasPrefix(r.stdout, "Job update has started. View your update progress at http://") {
		t.Fatalf("update start: %q", r.stdout)
	}
}

// TestUpdateAddOnlyKillOnly is test_update_add_only_kill_only: the
// instance count goes 1 → 3 → 1 → 3 through --bind profile.instances=N,
// each update ROLLING_FORWARD while it runs and ROLLED_FORWARD at the end.
// Adding and removing instances leaves instance 0 alone.
func TestUpdateAddOnlyKillOnly(t *testing.T) {
	srv := buildHTTPServer(t)
	c := newCluster(t)
	c.up()
	cfg := c.auroraConfig("http_example.aurora", srv)
	key := "devcluster/www-data/test/http_example"

	c.mustAurora("job", "create", key, cfg, "--bind", "profile.instances=1", "--wait-until", "RUNNING")
	c.waitTaskCounts(t, key, 1, 0, 2*time.Minute)
	if h := c.healthOf(t, key); len(h) != 1 || h[0] != "ok" {
		t.Fatalf("health of the one instance: %q", h)
	}
	task0, _ := c.jobStatusJQ(key, ".[0].active[0].assignedTask.taskId")

	for _, n := range []int{3, 1, 3} {
		t.Logf("update to %d instances", n)
		c.startUpdate(t, key, cfg, "--bind", fmt.Sprintf("profile.instances=%d", n))
		if s := c.activeUpdateState(key); s != "ROLLING_FORWARD" {
			t.Fatalf("active update state %q, want ROLLING_FORWARD", s)
		}
		id := c.updateID(key, "ROLLING_FORWARD")
		r := c.auroraT("update", "wait", key, id)
		if r.code != 0 || !strings.HasSuffix(r.stdout, "Current state ROLLED_FORWARD\n") {
			t.Fatalf("update wait %s: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
		}
		if s := c.updateStateByID(key, id); s != "ROLLED_FORWARD" {
			t.Fatalf("update %s: Current status %q", id, s)
		}
		c.waitTaskCounts(t, key, n, 0, 2*time.Minute)
		if s := c.activeUpdateState(key); s != "" {
			t.Fatalf("an active update after ROLLED_FORWARD: %q", s)
		}
		if got, _ := c.jobStatusJQ(key, ".[0].active[0].assignedTask.taskId"); got != task0 {
			t.Fatalf("instance 0 was replaced (%s → %s) by an add-only or kill-only update", task0, got)
		}
	}
	if h := c.healthOf(t, key); len(h) != 3 {
		t.Fatalf("health of 3 instances: %q", h)
	}
	c.mustAurora("job", "killall", key)
}

// TestUpdateWithSchedulerRestart is test_update with a kill -9 of the
// scheduler in the middle of the update to http_example_updated (3
// instances whose health checks take over 30 s): the update carries on
// after the restart, pauses and resumes, and ends ROLLED_FORWARD with every
// task on the new configuration.
func TestUpdateWithSchedulerRestart(t *testing.T) {
	srv := buildHTTPServer(t)
	c := newCluster(t)
	c.up()
	key := "devcluster/www-data/test/http_example"
	base := c.auroraConfig("http_example.aurora", srv)
	updated := c.auroraConfig("http_example_updated.aurora", srv)

	c.mustAurora("job", "create", key, base, "--bind", "profile.instances=3", "--wait-until", "RUNNING")
	c.waitTaskCounts(t, key, 3, 0, 2*time.Minute)
	before, _ := c.jobStatusJQ(key, ".[0].active[].assignedTask.taskId")

	c.startUpdate(t, key, updated)
	if s := c.activeUpdateState(key); s != "ROLLING_FORWARD" {
		t.Fatalf("active update state %q, want ROLLING_FORWARD", s)
	}
	id := c.updateID(key, "ROLLING_FORWARD")
	if r := c.auroraAdmin("scheduler_snapshot", "devcluster"); r.code != 0 {
		t.Fatalf("scheduler_snapshot: %d %s", r.code, r.stderr)
	}

	sched := c.component("scheduler")
	start := time.Now()
	syscall.Kill(sched.PID, syscall.SIGKILL)
	waitFor(t, "the scheduler restarted and healthy", 90*time.Second, func() bool {
		s := c.component("scheduler")
		return s.PID != sched.PID && s.Health == status.Healthy
	})
	var state string
	poll(t, "the client to reach the restarted scheduler", 90*time.Second, func() bool {
		state = c.activeUpdateState(key)
		return !strings.HasPrefix(state, "exit ")
	})
	t.Logf("scheduler back %s after kill -9", time.Since(start).Round(time.Millisecond))
	if state != "ROLLING_FORWARD" {
		t.Fatalf("after the scheduler's restart the active update state is %q, want ROLLING_FORWARD", state)
	}

	if r := c.mustAurora("update", "pause", key, "--message=hello"); r.stdout != "Update has been paused.\n" {
		t.Fatalf("update pause: %q", r.stdout)
	}
	if s := c.activeUpdateState(key); s != "ROLL_FORWARD_PAUSED" {
		t.Fatalf("active update state %q after pause, want ROLL_FORWARD_PAUSED", s)
	}
	if r := c.mustAurora("update", "info", key, id); !strings.Contains(r.stdout, "  Status: ROLL_FORWARD_PAUSED at ") || !strings.Contains(r.stdout, "      message: hello\n") {
		t.Fatalf("update info lacks the pause and its message:\n%s", r.stdout)
	}
	if r := c.mustAurora("update", "resume", key); r.stdout != "Update has been resumed.\n" {
		t.Fatalf("update resume: %q", r.stdout)
	}
	if s := c.activeUpdateState(key); s != "ROLLING_FORWARD" {
		t.Fatalf("active update state %q after resume, want ROLLING_FORWARD", s)
	}
	r := c.auroraT("update", "wait", key, id)
	if r.code != 0 {
		t.Fatalf("update wait %s: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
	}
	if s := c.updateStateByID(key, id); s != "ROLLED_FORWARD" {
		t.Fatalf("update %s: Current status %q", id, s)
	}
	c.waitTaskCounts(t, key, 3, 0, 2*time.Minute)
	// Every task is new, and its server is the updated one (it answers "OK").
	after, _ := c.jobStatusJQ(key, ".[0].active[].assignedTask.taskId")
	for _, tid := range strings.Fields(after) {
		if strings.Contains(before, tid) {
			t.Fatalf("task %s of the old configuration is still active after ROLLED_FORWARD", tid)
		}
	}
	if h := c.healthOf(t, key); strings.Join(h, ",") != "OK,OK,OK" {
		t.Fatalf("health answers after the update: %q, want the updated server's OK ×3", h)
	}
	if got, _ := c.jobStatusJQ(key, `[.[0].active[].assignedTask.task.resources[] | select(.ramMb) | .ramMb] | unique | .[]`); got != "24" {
		t.Fatalf("ramMb of the updated tasks: %q, want 24", got)
	}
	c.mustAurora("job", "killall", key)
}

// TestUpdateFailRollsBack is test_update_fail: an update to a configuration
// whose health check never passes fails, rolls back (rollback_on_failure
// is on by default), and `update wait` exits 4; the job runs the old
// configuration again.
func TestUpdateFailRollsBack(t *testing.T) {
	srv := buildHTTPServer(t)
	c := newCluster(t)
	c.up()
	key := "devcluster/www-data/test/http_example"
	base := c.auroraConfig("http_example.aurora", srv)
	bad := c.auroraConfig("http_example_bad_healthcheck.aurora", srv)

	// As the reference: the base config through an update first (here it
	// creates the job), then the bad one.
	c.startUpdate(t, key, base)
	id := c.updateID(key, "active")
	if r := c.auroraT("update", "wait", key, id); r.code != 0 {
		t.Fatalf("update wait (base): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.waitTaskCounts(t, key, 1, 0, 2*time.Minute)
	if h := c.healthOf(t, key); len(h) != 1 || h[0] != "ok" {
		t.Fatalf("health before the bad update: %q", h)
	}

	c.startUpdate(t, key, bad)
	id = c.updateID(key, "active")
	r := c.auroraT("update", "wait", key, id)
	if r.code != 4 || !strings.HasSuffix(r.stdout, "Current state ROLLED_BACK\n") {
		t.Fatalf("update wait (bad health check): exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
	}
	if s := c.updateStateByID(key, id); s != "ROLLED_BACK" {
		t.Fatalf("update %s: Current status %q, want ROLLED_BACK", id, s)
	}
	info := c.mustAurora("update", "info", key, id).stdout
	for _, want := range []string{"Status: ROLLING_FORWARD", "Status: ROLLING_BACK", "Status: ROLLED_BACK",
		"Instance 0 at", ": INSTANCE_UPDATE_FAILED", ": INSTANCE_ROLLED_BACK"} {
		if !strings.Contains(info, want) {
			t.Errorf("update info lacks %q:\n%s", want, info)
		}
	}
	c.waitTaskCounts(t, key, 1, 0, 2*time.Minute)
	if h := c.healthOf(t, key); len(h) != 1 || h[0] != "ok" {
		t.Fatalf("health after the rollback: %q, want the old server's ok", h)
	}
	// (The health answer above, "ok" rather than "sick", shows the running
	// task has the old configuration: job status, as Aurora's, shows tasks
	// without their executor configs.)
	// The bad task failed its health check.
	if got, _ := c.jobStatusJQ(key, `[.[0].inactive[] | .taskEvents[].message // empty] | map(select(contains("Failed health check"))) | length > 0`); got != "true" {
		out, _ := c.jobStatusJQ(key, `.[0].inactive[] | [.status, (.taskEvents[] | .status + " " + (.message // ""))]`)
		t.Fatalf("no inactive bad task with a failed health check:\n%s", out)
	}
	c.mustAurora("job", "killall", key)
}

// TestQuotaGet is test_quota's `aurora quota get`, after aurora_admin
// set_quota and with a production job consuming part of it. Without
// quota, the production job is refused.
func TestQuotaGet(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "quota.aurora")
	b, err := os.ReadFile("testdata/quota.aurora")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, b, 0o644)
	key := "devcluster/www-data/prod/hello"

	if r := c.auroraT("job", "create", key, cfg); r.code == 0 || !strings.Contains(r.stderr, "Insufficient resource quota") {
		t.Fatalf("a production job without quota: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := c.mustAurora("quota", "get", "devcluster/www-data"); !strings.HasPrefix(r.stdout, "Allocated:\n  CPU: 0.0\n  RAM: 0.000000 GB\n  Disk: 0.000000 GB\n") {
		t.Fatalf("quota get without quota:\n%s", r.stdout)
	}
	if r := c.auroraAdmin("set_quota", "devcluster", "www-data", "4", "4096", "8192"); r.code != 0 {
		t.Fatalf("set_quota: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := "Allocated:\n  CPU: 4.0\n  RAM: 4.000000 GB\n  Disk: 8.000000 GB\n"
	if r := c.mustAurora("quota", "get", "devcluster/www-data"); r.stdout != want {
		t.Fatalf("quota get:\n%s\nwant:\n%s", r.stdout, want)
	}
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	// 2 instances of cpu 0.5, ram 64 MB, disk 128 MB.
	want += "Production resources consumed:\n  CPU: 1.0\n  RAM: 0.125000 GB\n  Disk: 0.250000 GB\n"
	if r := c.mustAurora("quota", "get", "devcluster/www-data"); r.stdout != want {
		t.Fatalf("quota get with the job:\n%s\nwant:\n%s", r.stdout, want)
	}
	r := c.mustAurora("quota", "get", "devcluster/www-data", "--write-json")
	if got := mustJQ(t, r.stdout, `[.quota.numCpus, .prodSharedConsumption.numCpus, .prodSharedConsumption.ramMb]`); got != "[4,1,128]" {
		t.Fatalf("quota get --write-json: %s\n%s", got, r.stdout)
	}
	c.mustAurora("job", "killall", key)
}

// TestPartitionAwareness is test_partition_awareness. The agent is killed
// while the supervisor is stopped (SIGSTOP), so nothing restarts it: the
// master reports its tasks unreachable after its agent removal timeout
// (75 s, Mesos' 15 s × 5 pings), and each job's PartitionPolicy decides:
// the default reschedules (LOST, a PENDING replacement), reschedule=False
// and a long delay_secs leave the task PARTITIONED. When the supervisor
// continues it restarts the agent, whose executors kept running, and the
// PARTITIONED tasks are RUNNING again.
func TestPartitionAwareness(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "partition_aware.aurora")
	b, err := os.ReadFile("testdata/partition_aware.aurora")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cfg, b, 0o644)
	const prefix = "devcluster/www-data/test/partition_aware_"
	def, disabled, delay := prefix+"default", prefix+"disabled", prefix+"delay"
	for _, key := range []string{def, disabled, delay} {
		// Updates that create the jobs from nothing.
		r := c.mustAurora("update", "start", "--wait", key, cfg)
		if !strings.HasSuffix(r.stdout, "Current state ROLLED_FORWARD\n") {
			t.Fatalf("update start --wait %s:\n%s", key, r.stdout)
		}
		c.waitTaskStatus(t, key, 0, "RUNNING", 2*time.Minute)
	}
	oldDefault, _ := c.jobStatusJQ(def, ".[0].active[0].assignedTask.taskId")

	st := c.status()
	agent := c.component("agent")
	syscall.Kill(st.Supervisor.PID, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(st.Supervisor.PID, syscall.SIGCONT) })
	syscall.Kill(agent.PID, syscall.SIGKILL)
	stopped := time.Now()

	c.waitTaskStatus(t, def, 0, "PENDING", 3*time.Minute)
	t.Logf("default: PENDING %s after the agent stopped", time.Since(stopped).Round(time.Second))
	if s := c.taskStatus(disabled, 0); s != "PARTITIONED" {
		t.Fatalf("%s/0 is %s, want PARTITIONED", disabled, s)
	}
	if s := c.taskStatus(delay, 0); s != "PARTITIONED" {
		t.Fatalf("%s/0 is %s, want PARTITIONED", delay, s)
	}
	// The default job's task went PARTITIONED → LOST, and was replaced.
	if got, _ := c.jobStatusJQ(def, `[.[0].inactive[] | select(.assignedTask.taskId == "`+oldDefault+`") | .status, [.taskEvents[].status]]`); !strings.Contains(got, `"LOST"`) || !strings.Contains(got, `"PARTITIONED"`) {
		t.Fatalf("the default job's old task: %s", got)
	}

	syscall.Kill(st.Supervisor.PID, syscall.SIGCONT)
	waitFor(t, "the agent restarted and healthy", 60*time.Second, func() bool {
		a := c.component("agent")
		return a.PID != agent.PID && a.Health == status.Healthy
	})
	if r := c.auroraAdmin("reconcile_tasks", "devcluster"); r.code != 0 {
		t.Fatalf("reconcile_tasks: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.waitTaskStatus(t, disabled, 0, "RUNNING", 2*time.Minute)
	c.waitTaskStatus(t, delay, 0, "RUNNING", 2*time.Minute)
	c.waitTaskStatus(t, def, 0, "RUNNING", 2*time.Minute)
	for _, key := range []string{def, disabled, delay} {
		if n, _ := c.jobStatusJQ(key, ".[0].active | length"); n != "1" {
			t.Fatalf("%s: %s active tasks after the agent's return, want 1", key, n)
		}
		c.mustAurora("job", "killall", key)
	}
}
