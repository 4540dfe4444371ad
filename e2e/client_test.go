//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/supervise"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// helloWorld is the Aurora tutorial's hello_world.aurora, for our cluster.
const helloWorld = `
hello = Process(
  name = 'hello',
  cmdline = """
    while true; do
      echo hello world
      sleep 10
    done
  """)

task = SequentialTask(
  processes = [hello],
  resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))

jobs = [Service(
  cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'hello', task = task)]
`

// aurora runs the client as `aurora` (a symlink to the binary, as make
// install makes), with the appliance's clusters.json.
func (c *cluster) aurora(args ...string) result {
	c.t.Helper()
	dir := filepath.Join(c.dir, "clientbin")
	os.MkdirAll(dir, 0o755)
	link := filepath.Join(dir, "aurora")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(bin(c.t), link); err != nil {
			c.t.Fatal(err)
		}
	}
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), "AURORA_CONFIG_ROOT="+c.dir, "HOME="+c.dir)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestAuroraClient is the scenario: create the tutorial job and
// wait until it runs, read its status as scripts do, look at its output
// through task ssh, and kill it.
func TestAuroraClient(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "hello_world.aurora")
	os.WriteFile(cfg, []byte(helloWorld), 0o644)
	key := "devcluster/www-data/test/hello"

	r := c.aurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Job create succeeded: job url=http://") || !strings.Contains(r.stdout, "/scheduler/www-data/test/hello") {
		t.Fatalf("job create: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = c.aurora("job", "status", key, "--write-json")
	if r.code != 0 {
		t.Fatalf("job status: %d %s", r.code, r.stderr)
	}
	if got := mustJQ(t, r.stdout, `.[0].active[0].status`); got != `"RUNNING"` {
		t.Fatalf("status %s", got)
	}
	var out string
	waitFor(t, "hello world in the process's stdout", 30e9, func() bool {
		r = c.aurora("task", "ssh", key+"/0", "--command=tail -1 .logs/hello/0/stdout")
		out = r.stdout
		return r.code == 0 && strings.TrimSpace(out) == "hello world"
	})
	if r := c.aurora("config", "list", cfg); r.code != 0 || strings.TrimSpace(r.stdout) != "jobs=[devcluster/www-data/test/hello]" {
		t.Fatalf("config list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := c.aurora("job", "list", "devcluster/www-data"); r.code != 0 || strings.TrimSpace(r.stdout) != key {
		t.Fatalf("job list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := c.aurora("job", "killall", key); r.code != 0 || r.stdout != "Job killall succeeded\n" {
		t.Fatalf("killall: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Errors a user meets: a config typo names the line; a bad key says which part.
	os.WriteFile(cfg, []byte(strings.Replace(helloWorld, "cmdline =", "cmdlin =", 1)), 0o644)
	if r := c.aurora("job", "create", key, cfg); r.code != 3 || !strings.Contains(r.stderr, "hello_world.aurora:") {
		t.Fatalf("typo: %d %s", r.code, r.stderr)
	}
	if r := c.aurora("job", "create", "devcluster/www-data/te st/hello", cfg); r.code != 6 || !strings.Contains(r.stderr, "environment") {
		t.Fatalf("bad key: %d %s", r.code, r.stderr)
	}
}

// An unreachable scheduler exits 7 and names the address it tried.
func TestAuroraClientUnreachable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "clusters.json"), []byte(`[{"name": "gone", "scheduler_uri": "http://127.0.0.1:9"}]`), 0o644)
	c := &cluster{t, dir}
	r := c.aurora("job", "list", "gone")
	if r.code != 7 || !strings.Contains(r.stderr, "http://127.0.0.1:9") {
		t.Fatalf("unreachable: %d %s", r.code, r.stderr)
	}
}

// kill -9 of the supervisor while a service runs: its components die with
// it (Pdeathsig), but the executors and tasks survive, and the next `up`
// leaves them to the agent, which recovers them from its checkpoints as
// after an agent restart: the tasks keep their processes and task ids and
// stay RUNNING.
func TestSupervisorKill9KeepsTasks(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "hello.aurora")
	job := strings.Replace(helloWorld, "task = task)", "task = task, instances = 2)", 1)
	job = strings.Replace(job, "sleep 10", "sleep 600", 1) // processes that live through the test
	os.WriteFile(cfg, []byte(job), 0o644)
	key := "devcluster/www-data/test/hello"
	if r := c.aurora("job", "create", key, cfg, "--wait-until", "RUNNING"); r.code != 0 {
		t.Fatalf("job create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	marker := supervise.Marker(c.dir)
	running := func() map[string]bool {
		sched := "http://" + c.component("scheduler").Address
		var r api.Response
		json.Unmarshal([]byte(curlJSON(t, sched+"/api/getTasksStatus", `{"query": {"role": "www-data", "environment": "test", "jobName": "hello"}}`)), &r)
		ids := map[string]bool{}
		for _, ts := range r.Result.ScheduleStatusResult.Tasks {
			ids[ts.AssignedTask.TaskID+" "+ts.Status] = true
		}
		return ids
	}
	var before map[string]bool
	waitFor(t, "2 RUNNING tasks", 30*time.Second, func() bool {
		before = running()
		return len(before) == 2 && count2(before, "RUNNING")
	})
	// The executors and their task processes: marked, but no component.
	tasks := func() []int {
		comps := map[int]bool{}
		for _, pid := range supervise.FindComponents(marker) {
			comps[pid] = true
		}
		var out []int
		for _, pid := range supervise.Find(marker) {
			if !comps[pid] {
				out = append(out, pid)
			}
		}
		return out
	}
	var pids []int
	waitFor(t, "executors and task processes", 30*time.Second, func() bool {
		pids = descendants(tasks())
		return len(pids) >= 4 // 2 executors, 2 shells running the loop
	})
	t.Logf("executor and task processes: %v", pids)

	agentAddr, zkAddr := c.component("agent").Address, c.component("zookeeper").Address
	syscall.Kill(c.status().Supervisor.PID, syscall.SIGKILL)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(c.dir, "logs", "aurorabox.log"))
			t.Logf("supervisor log:\n%s", b)
		}
	})
	waitFor(t, "the components to die with the supervisor", 15*time.Second, func() bool {
		return len(supervise.FindComponents(marker)) == 0
	})
	start := time.Now()
	c.up()
	t.Logf("up after the supervisor's kill -9 took %v", time.Since(start).Round(time.Millisecond))

	alive := func() []int {
		var dead []int
		for _, pid := range pids {
			if syscall.Kill(pid, 0) != nil || isZombie(pid) {
				dead = append(dead, pid)
			}
		}
		return dead
	}
	// The agent has recovered the executors once they are subscribed again:
	// their tasks are then RUNNING in the agent's state.
	agentTasks := func() int {
		out, _ := exec.Command("bash", "-c", `curl -fsS "$1/state" | jq '[.frameworks[].executors[].tasks[] | select(.state == "TASK_RUNNING")] | length'`,
			"x", "http://"+c.component("agent").Address).Output()
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	waitFor(t, "the agent to recover both tasks", 60*time.Second, func() bool { return agentTasks() == 2 })
	waitFor(t, "the scheduler to know both tasks RUNNING", 60*time.Second, func() bool { return len(running()) == 2 && count2(running(), "RUNNING") })
	if after := running(); !maps.Equal(after, before) {
		t.Fatalf("tasks before the supervisor's kill -9: %v; after the next up: %v", before, after)
	}
	if dead := alive(); len(dead) > 0 {
		t.Fatalf("executor and task processes %v died (of %v)", dead, pids)
	}
	// The executors reach the agent and ZooKeeper where they were.
	if a, z := c.component("agent").Address, c.component("zookeeper").Address; a != agentAddr || z != zkAddr {
		t.Fatalf("agent %s and zookeeper %s moved to %s and %s", agentAddr, zkAddr, a, z)
	}
	// A recovered executor is subscribed again: a kill reaches its task.
	if r := c.aurora("job", "kill", key+"/1"); r.code != 0 {
		t.Fatalf("kill of instance 1: %d %s %s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "instance 1 KILLED, instance 0 RUNNING as before", 60*time.Second, func() bool {
		now := running()
		killed, kept := 0, 0
		for k := range now {
			id, st, _ := strings.Cut(k, " ")
			if st == "KILLED" && before[id+" RUNNING"] {
				killed++
			}
			if st == "RUNNING" && before[k] {
				kept++
			}
		}
		return len(now) == 2 && killed == 1 && kept == 1
	})
}

func count2(ids map[string]bool, status string) bool {
	for k := range ids {
		if !strings.HasSuffix(k, " "+status) {
			return false
		}
	}
	return true
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || bytes.Contains(b, []byte(") Z"))
}

// descendants is pids and all their descendants.
func descendants(pids []int) []int {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		fields := strings.Fields(string(b[i+1:]))
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if len(fields) > 1 {
			parent[pid], _ = strconv.Atoi(fields[1])
		}
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if in[pp] && !in[pid] {
				in[pid], changed = true, true
			}
		}
	}
	out := make([]int, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
