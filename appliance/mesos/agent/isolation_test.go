package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// hogged keeps memhog's allocations reachable.
var hogged [][]byte

// memhog allocates and touches memory until something stops it.
func memhog() {
	for {
		b := make([]byte, 8<<20)
		for i := range b {
			b[i] = 1
		}
		hogged = append(hogged, b)
		time.Sleep(5 * time.Millisecond)
	}
}

// isolated starts a cluster and skips the test where the agent cannot use
// cgroups, saying why.
func isolated(t *testing.T, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	c := startCluster(t, opts...)
	st := c.state()
	mode, _ := st["isolation"].(string)
	if mode == string(isolation.ModeNone) {
		if os.Getenv("AURORABOX_REQUIRE_CGROUPS") == "1" {
			t.Fatalf("containers are not isolated here: %v (AURORABOX_REQUIRE_CGROUPS=1)", st["isolation_reason"])
		}
		t.Skipf("containers are not isolated here: %v", st["isolation_reason"])
	}
	if mode != string(isolation.ModeV1) && mode != string(isolation.ModeV2) {
		t.Fatalf("agent state isolation = %q", mode)
	}
	if f := st["flags"].(map[string]any)["isolation"]; f != "cgroups/cpu,cgroups/mem,cgroups/pids" {
		t.Errorf("flags.isolation = %v", f)
	}
	return c
}

func taskWith(id, command string, cpus, memMB float64) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
			Command:   &mesos.CommandInfo{Value: &command},
			Resources: []mesos.Resource{resources.NewCPUs(cpus).Resource, resources.NewMemory(memMB).Resource},
		}
	}
}

func (c *cluster) awaitRunning(id string) {
	c.t.Helper()
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		if st := c.sched.updateFor(id); st.GetState() != want {
			c.t.Fatalf("%s: %s (%s), want %s", id, st.GetState(), st.GetMessage(), want)
		}
	}
}

// stats is the /monitor/statistics entry of an executor.
func (c *cluster) stats(executorID string) map[string]any {
	c.t.Helper()
	resp, err := http.Get(c.agentURL + "/monitor/statistics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var all []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		c.t.Fatal(err)
	}
	for _, e := range all {
		if e["executor_id"] == executorID {
			return e["statistics"].(map[string]any)
		}
	}
	c.t.Fatalf("no statistics for %s in %v", executorID, all)
	return nil
}

func TestMemoryLimitKillsTask(t *testing.T) {
	c := isolated(t)
	self, _ := os.Executable()
	c.sched.launch(taskWith("hog", self+" memhog", 0.1, 32))
	st := c.sched.updateFor("hog")
	for st.GetState() == mesos.TASK_STARTING || st.GetState() == mesos.TASK_RUNNING {
		st = c.sched.updateFor("hog")
	}
	if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_CONTAINER_LIMITATION_MEMORY || st.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("OOM: %s %s %s %q", st.GetState(), st.GetReason(), st.GetSource(), st.GetMessage())
	}
	// 32 MB for the task and Mesos' 32 MB for the command executor.
	if !strings.HasPrefix(st.GetMessage(), "Memory limit exceeded: Requested: 64MB") {
		t.Errorf("message %q", st.GetMessage())
	}
}

// TestCPUQuotaLimitsBusyLoop measures a busy loop's CPU use: without a
// quota it would take a whole core; its 0.2 cpus plus the executor's 0.1
// give it 0.3.
func TestCPUQuotaLimitsBusyLoop(t *testing.T) {
	c := isolated(t, func(cfg *agent.Config) { cfg.EnableCFS = true })
	c.sched.launch(taskWith("busy", "while :; do :; done", 0.2, 32))
	c.awaitRunning("busy")
	cpu := func() (float64, time.Time) {
		s := c.stats("busy")
		return s["cpus_user_time_secs"].(float64) + s["cpus_system_time_secs"].(float64), time.Now()
	}
	if l := c.stats("busy")["cpus_limit"].(float64); l < 0.299 || l > 0.301 {
		t.Errorf("cpus_limit %v, want 0.3", l)
	}
	time.Sleep(500 * time.Millisecond)
	u0, t0 := cpu()
	time.Sleep(3 * time.Second)
	u1, t1 := cpu()
	rate := (u1 - u0) / t1.Sub(t0).Seconds()
	t.Logf("busy loop used %.3f cpus under a quota of 0.3", rate)
	if rate > 0.4 {
		t.Errorf("busy loop used %.2f cpus, quota is 0.3", rate)
	}
	if rate < 0.01 {
		t.Errorf("busy loop used only %.2f cpus: is it running, is usage measured?", rate)
	}
	killTask(t, c.sched, "busy")
	if st := c.sched.updateFor("busy"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %s", st.GetState())
	}
}

// TestPidsLimitStopsForkBomb runs a fork bomb in a container limited to 64
// processes; the agent stays up, the count stays bounded, and a kill
// removes every process.
func TestPidsLimitStopsForkBomb(t *testing.T) {
	c := isolated(t, func(cfg *agent.Config) { cfg.PidsLimit = 64 })
	// The bomb runs in a subshell and the task's shell then execs: once the
	// limit is reached a fork fails, and a shell that still had to fork would
	// fail the task (status 2), which is the limit working but ends the test.
	c.sched.launch(taskWith("bomb", "(b() { b | b & }; b); exec sleep 1000", 0.1, 64))
	c.awaitRunning("bomb")
	time.Sleep(2 * time.Second)
	if n := c.stats("bomb")["processes"].(float64); n > 64 {
		t.Fatalf("%v processes in a container limited to 64", n)
	}
	if code, _ := c.get("/health", nil); code != http.StatusOK {
		t.Fatalf("agent health %d during the fork bomb", code)
	}
	killTask(t, c.sched, "bomb")
	if st := c.sched.updateFor("bomb"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %s %q", st.GetState(), st.GetMessage())
	}
	waitNoProcesses(t, "MESOS_EXECUTOR_ID=bomb")
}

// TestKillReachesDoubleForkedDaemon: a daemon that left the task's session
// is still in its container, and dies with it.
func TestKillReachesDoubleForkedDaemon(t *testing.T) {
	c := isolated(t)
	c.sched.launch(taskWith("df", "(setsid sleep 4242 </dev/null >/dev/null 2>&1 &); sleep 1000", 0.1, 32))
	c.awaitRunning("df")
	deadline := time.Now().Add(5 * time.Second)
	for len(processesWithEnv(func(kv string) bool { return kv == "MESOS_EXECUTOR_ID=df" })) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	killTask(t, c.sched, "df")
	if st := c.sched.updateFor("df"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %s %q", st.GetState(), st.GetMessage())
	}
	waitNoProcesses(t, "MESOS_EXECUTOR_ID=df")
	// The container's cgroup goes too, once the executor has exited.
	root := isolation.AgentRoot(c.workDir, "")
	left := func() (all []string) {
		for _, d := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
			entries, _ := filepath.Glob(filepath.Join(d, root, "*", "cgroup.procs"))
			all = append(all, entries...)
		}
		return all
	}
	gone := time.Now().Add(10 * time.Second)
	for len(left()) > 0 && time.Now().Before(gone) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := left(); len(l) > 0 {
		t.Errorf("container cgroups left after the kill: %v", l)
	}
}

func waitNoProcesses(t *testing.T, env string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processesWithEnv(func(kv string) bool { return kv == env })
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var cmds []string
			for _, p := range pids {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				cmds = append(cmds, strings.ReplaceAll(string(b), "\x00", " "))
			}
			t.Fatalf("processes left behind: %v %q", pids, cmds)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestForkBombDiesWithItsExecutor: a bounded fork bomb (a tree of shells,
// each forking its children again whenever they die, about 250 processes,
// the container limited to 300) outlives its executor's kill -9 only until
// the agent destroys the container: the cgroup is frozen, every process
// killed, and nothing is left.
func TestForkBombDiesWithItsExecutor(t *testing.T) {
	c := isolated(t, func(cfg *agent.Config) { cfg.PidsLimit = 300 })
	script := filepath.Join(t.TempDir(), "bomb.sh")
	os.WriteFile(script, []byte(`trap '' TERM
d=${1:-0}
if [ "$d" -le 0 ]; then exec sleep 1000; fi
for i in 1 2; do (trap '' TERM; while :; do bash "$0" $((d-1)); done) & done
wait
`), 0o644)
	os.Chmod(filepath.Dir(script), 0o755)
	c.sched.launch(taskWith("tree", "exec bash "+script+" 6", 0.5, 512))
	c.awaitRunning("tree")
	env := "MESOS_EXECUTOR_ID=tree"
	deadline := time.Now().Add(30 * time.Second)
	for len(processesWithEnv(func(kv string) bool { return kv == env })) < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the fork bomb did not grow: %d processes", len(processesWithEnv(func(kv string) bool { return kv == env })))
		}
		time.Sleep(50 * time.Millisecond)
	}
	exs := executorPIDs("tree")
	if len(exs) != 1 {
		t.Fatalf("executor pids %v", exs)
	}
	syscall.Kill(exs[0], syscall.SIGKILL)
	if st := c.sched.updateFor("tree"); st.GetState() != mesos.TASK_FAILED {
		t.Fatalf("after the executor's kill -9: %s %q", st.GetState(), st.GetMessage())
	}
	waitNoProcesses(t, env)
}

// TestOrphanContainersDestroyed: a container under the agent's cgroup root
// that no executor checkpoint knows (as after a crash between creating it
// and checkpointing, or leftovers of a lost meta dir) is destroyed, with
// what runs in it, when the agent starts; a supervisor's crash no longer
// removes the containers, so the agent must.
func TestOrphanContainersDestroyed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	workDir := t.TempDir()
	iso, err := isolation.New(isolation.AgentRoot(workDir, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if iso.Mode() == isolation.ModeNone {
		t.Skipf("containers are not isolated here: %s", iso.Reason())
	}
	t.Cleanup(func() { iso.Cleanup() })
	orphan, err := iso.Create("orphan", isolation.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	t.Cleanup(func() { sleep.Process.Kill(); <-exited })
	if err := orphan.Add(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	if _, err := agent.New(agent.Config{ListenAddr: "127.0.0.1:1", MasterURL: "http://127.0.0.1:1", WorkDir: workDir, Exe: self}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan container's process still runs after the agent started")
	}
	if ids, err := iso.List(); err != nil || len(ids) != 0 {
		t.Fatalf("containers left: %v %v", ids, err)
	}
}
