//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// pidService is a 3-instance service whose one process writes its shell's
// pid to the sandbox, so the test can follow the task's process.
const pidService = `
sleeper = Process(
  name = 'sleeper',
  cmdline = 'echo $$ > task.pid; while true; do sleep 1; done')

jobs = [Service(
  cluster = 'devcluster', environment = 'test', role = 'www-data', name = '%s',
  instances = 3,
  task = Task(processes = [sleeper], resources = Resources(cpu = 0.05, ram = 16*MB, disk = 16*MB)))]
`

// taskProc is one instance's task as the scheduler and the kernel see it.
type taskProc struct {
	taskID string
	pid    int
	start  string // /proc/<pid>/stat field 22, so a recycled pid is not the same process
}

// procStart is the start time of pid in clock ticks since boot, "" if the
// process is gone.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" {
		return ""
	}
	return f[19]
}

// activeTasks maps instance id to task id for every active task of key; it
// fails the test if an instance has more than one active task.
func (c *cluster) activeTasks(t *testing.T, key string) map[int]string {
	t.Helper()
	out, ok := c.jobStatusJQ(key, `.[0].active[] | "\(.assignedTask.instanceId) \(.assignedTask.taskId) \(.status)"`)
	if !ok {
		t.Fatal(out)
	}
	tasks := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		id, _ := strconv.Atoi(f[0])
		if prev, dup := tasks[id]; dup {
			t.Fatalf("instance %d is duplicated: %s and %s\n%s", id, prev, f[1], out)
		}
		tasks[id] = f[1] + " " + f[2]
	}
	return tasks
}

// taskPID reads the pid the task's process wrote in its sandbox, through
// the observer.
func (c *cluster) taskPID(t *testing.T, taskID string) int {
	t.Helper()
	obs := "http://" + c.component("observer").Address
	var pid int
	waitFor(t, "the task's pid file through the observer", 30*time.Second, func() bool {
		resp, err := http.Get(obs + "/download/" + taskID + "/task.pid")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pid, err = strconv.Atoi(string(bytes.TrimSpace(b)))
		return resp.StatusCode == 200 && err == nil && pid > 0
	})
	return pid
}

// snapshot waits for 3 RUNNING instances of key and returns their tasks.
func (c *cluster) snapshot(t *testing.T, key string) map[int]taskProc {
	t.Helper()
	c.waitTaskCounts(t, key, 3, 0, 2*time.Minute)
	procs := map[int]taskProc{}
	for inst, v := range c.activeTasks(t, key) {
		id := strings.Fields(v)[0]
		pid := c.taskPID(t, id)
		procs[inst] = taskProc{taskID: id, pid: pid, start: procStart(pid)}
	}
	if len(procs) != 3 {
		t.Fatalf("%d active instances: %v", len(procs), procs)
	}
	return procs
}

// sameTasks checks that every instance in want still runs the same task
// with the same live process, and that no instance is duplicated.
func (c *cluster) sameTasks(t *testing.T, key string, want map[int]taskProc, after string) {
	t.Helper()
	c.waitTaskCounts(t, key, 3, 0, time.Minute)
	got := c.activeTasks(t, key)
	for inst, w := range want {
		if g := got[inst]; g != w.taskID+" RUNNING" {
			t.Fatalf("after %s: instance %d is %q, want %s RUNNING (all: %v)", after, inst, g, w.taskID, got)
		}
		if s := procStart(w.pid); s == "" || s != w.start {
			t.Fatalf("after %s: instance %d's process %d is gone (start %q, was %q)", after, inst, w.pid, s, w.start)
		}
	}
}

// executorPID finds the executor of taskID among the appliance's processes.
func (c *cluster) executorPID(t *testing.T, taskID string) int {
	t.Helper()
	for _, pid := range supervise.Find(supervise.Marker(c.dir)) {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == "MESOS_EXECUTOR_ID=thermos-"+taskID {
				return pid
			}
		}
	}
	t.Fatalf("no executor process for %s", taskID)
	return 0
}

// TestKill9EachComponent kills -9 every component in turn while a
// 3-instance service runs: each comes back healthy, the tasks keep their
// ids and processes (but the killed executor's, which Aurora replaces
// once, as Mesos fails the tasks of an executor that exits), no instance is
// duplicated, and a new job still runs at the end.
func TestKill9EachComponent(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "sleeper.aurora")
	os.WriteFile(cfg, []byte(fmt.Sprintf(pidService, "sleeper")), 0o644)
	key := "devcluster/www-data/test/sleeper"
	c.mustAurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	want := c.snapshot(t, key)

	var report []string
	defer func() { t.Logf("restart times: %s", strings.Join(report, "; ")) }()
	for _, name := range []string{"zookeeper", "master", "agent", "scheduler", "observer"} {
		old := c.component(name)
		start := time.Now()
		if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s (%d): %v", name, old.PID, err)
		}
		waitFor(t, name+" restarted and healthy", time.Minute, func() bool {
			s := c.component(name)
			return s.PID != old.PID && s.Health == status.Healthy
		})
		took := time.Since(start)
		c.sameTasks(t, key, want, "kill -9 of the "+name)
		report = append(report, fmt.Sprintf("%s %v", name, took.Round(time.Millisecond)))
	}

	// One executor: Mesos fails the tasks of an executor that exits, and
	// destroys its container; the scheduler replaces that instance, once.
	victim := want[0]
	exe := c.executorPID(t, victim.taskID)
	start := time.Now()
	syscall.Kill(exe, syscall.SIGKILL)
	poll(t, "instance 0 replaced by a new RUNNING task", 2*time.Minute, func() bool {
		got := c.activeTasks(t, key)
		f := strings.Fields(got[0])
		return len(f) == 2 && f[0] != victim.taskID && f[1] == "RUNNING"
	})
	report = append(report, fmt.Sprintf("executor (instance replaced) %v", time.Since(start).Round(time.Millisecond)))
	waitFor(t, "the killed executor's task process to be gone", 30*time.Second, func() bool {
		return procStart(victim.pid) != victim.start
	})
	delete(want, 0)
	c.sameTasks(t, key, want, "kill -9 of an executor")
	want = c.snapshot(t, key)

	// The supervisor: its components die with it; the next up takes back
	// the tasks the agent checkpointed instead of sweeping them.
	sup := c.status().Supervisor.PID
	start = time.Now()
	syscall.Kill(sup, syscall.SIGKILL)
	waitFor(t, "the supervisor's components to go", 30*time.Second, func() bool {
		return syscall.Kill(sup, 0) != nil
	})
	c.up()
	report = append(report, fmt.Sprintf("supervisor (kill -9, then up) %v", time.Since(start).Round(time.Millisecond)))
	c.sameTasks(t, key, want, "kill -9 of the supervisor and up")

	// Still a working cluster.
	cfg2 := filepath.Join(c.dir, "after.aurora")
	os.WriteFile(cfg2, []byte(fmt.Sprintf(pidService, "after")), 0o644)
	c.mustAurora("job", "create", "devcluster/www-data/test/after", cfg2, "--wait-until", "RUNNING")
	c.sameTasks(t, key, want, "a new job")
}
