package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/executor"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// The test binary doubles as the executor the scheduler launches.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "executor" {
		// The tasks run as the test's user: these tests are about
		// scheduling, and their roles (batch, prod, ...) have no users.
		if err := executor.Run(context.Background(), executor.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), NoSetuid: true}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(childScheduler) != "" {
		runChildScheduler()
	}
	os.Exit(m.Run())
}

type env struct {
	t       testing.TB
	cluster *mesostest.Cluster
	dataDir string
	sched   *scheduler.Scheduler
	url     string
	stop    func()
}

func start(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, cluster: mesostest.StartAgent(t), dataDir: t.TempDir()}
	e.startScheduler()
	t.Cleanup(func() { e.stop() })
	return e
}

// testOverhead is the executor overhead the tests' schedulers use: the
// default, except in race builds (race_test.go).
var testOverhead scheduler.Overhead

// startScheduler runs a scheduler on the env's data dir.
func (e *env) startScheduler() {
	e.t.Helper()
	self, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Config{
		ListenAddr: ln.Addr().String(), MasterURL: e.cluster.MasterURL, DataDir: e.dataDir,
		ExecutorPath: self, User: "root", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		ReconcileInterval: 300 * time.Millisecond, Overhead: testOverhead,
		FrameworkCredential: &scheduler.FrameworkCredential{Principal: e.cluster.Principal, Secret: e.cluster.Secret},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { s.Serve(ctx, ln); done <- struct{}{} }()
	e.sched, e.url = s, "http://"+ln.Addr().String()
	e.stop = func() {
		cancel()
		<-done
		<-done
		s.Close()
	}
}

// rpc calls the API.
func (e *env) rpc(method string, params any) api.Response {
	e.t.Helper()
	b, _ := json.Marshal(params)
	resp, err := http.Post(e.url+"/api/"+method, "application/json", strings.NewReader(string(b)))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func jobConfig(name string, instances int, service bool, maxFailures int, cmd string) api.JobConfiguration {
	key := api.JobKey{Role: "www-data", Environment: "prod", Name: name}
	data, _ := json.Marshal(schema.Job{
		Name: name, Role: key.Role, Environment: key.Environment, Cluster: "devcluster", Service: service,
		Task: schema.Task{Name: name, Processes: []schema.Process{{Name: "main", Cmdline: cmd, MinDuration: ptr(0.0)}}},
	})
	return api.JobConfiguration{
		Key: key, Owner: api.Identity{User: "www-data"}, InstanceCount: instances,
		TaskConfig: api.TaskConfig{
			Job: key, Owner: api.Identity{User: "www-data"}, IsService: service, MaxTaskFailures: maxFailures,
			Resources:      []api.Resource{{NumCpus: ptr(0.1)}, {RAMMb: ptr(int64(16))}, {DiskMb: ptr(int64(16))}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)},
		},
	}
}

// tasks returns the job's tasks by status.
func (e *env) tasks(name string) map[string][]api.ScheduledTask {
	e.t.Helper()
	r := e.rpc("getTasksStatus", map[string]any{"query": api.TaskQuery{Role: "www-data", Environment: "prod", JobName: name}})
	if r.ResponseCode != api.OK {
		e.t.Fatalf("getTasksStatus: %+v", r)
	}
	out := map[string][]api.ScheduledTask{}
	for _, t := range r.Result.ScheduleStatusResult.Tasks {
		out[t.Status] = append(out[t.Status], t)
	}
	return out
}

// await polls until cond holds for the job's tasks.
func (e *env) await(name, what string, cond func(map[string][]api.ScheduledTask) bool) map[string][]api.ScheduledTask {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts := e.tasks(name)
		if cond(ts) {
			return ts
		}
		if time.Now().After(deadline) {
			e.dumpExecutorLogs()
			e.t.Fatalf("%s: timed out waiting for %s; tasks by status: %v", name, what, summary(ts))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dumpExecutorLogs shows the executors' stderr, to explain a failure.
func (e *env) dumpExecutorLogs() {
	logs, _ := filepath.Glob(filepath.Join(e.cluster.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", "stderr"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		e.t.Logf("%s:\n%s", l, b)
	}
}

func summary(ts map[string][]api.ScheduledTask) map[string]int {
	out := map[string]int{}
	for s, l := range ts {
		out[s] = len(l)
	}
	return out
}

func TestServiceJobLifecycle(t *testing.T) {
	e := start(t)
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("hello", 3, true, 1, "sleep 600")}); r.ResponseCode != api.OK {
		t.Fatalf("createJob: %+v", r)
	}
	created := time.Now()
	ts := e.await("hello", "3 RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 3 })
	t.Logf("3 instances RUNNING %s after createJob", time.Since(created).Round(time.Millisecond))
	for _, tk := range ts["RUNNING"] {
		if !strings.HasPrefix(tk.AssignedTask.TaskID, fmt.Sprintf("www-data-prod-hello-%d-", tk.AssignedTask.InstanceID)) || tk.AssignedTask.SlaveHost == "" {
			t.Fatalf("task %+v", tk.AssignedTask)
		}
		var seen []string
		for _, ev := range tk.TaskEvents {
			seen = append(seen, ev.Status)
		}
		if strings.Join(seen, ",") != "PENDING,ASSIGNED,STARTING,RUNNING" {
			t.Errorf("events of %s: %v", tk.AssignedTask.TaskID, seen)
		}
	}
	// A second createJob of the same key is refused.
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("hello", 1, true, 1, "true")}); r.ResponseCode != api.InvalidRequest {
		t.Fatalf("duplicate createJob: %+v", r)
	}

	// Kill one instance: it ends KILLED and is not replaced.
	if r := e.rpc("killTasks", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}, "instances": []int{1}}); r.ResponseCode != api.OK {
		t.Fatalf("killTasks: %+v", r)
	}
	e.await("hello", "instance 1 KILLED", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["KILLED"]) == 1 && ts["KILLED"][0].AssignedTask.InstanceID == 1 && len(ts["RUNNING"]) == 2
	})

	// Restart instance 0: its task is killed and a replacement runs.
	old := map[string]bool{}
	for _, tk := range e.tasks("hello")["RUNNING"] {
		old[tk.AssignedTask.TaskID] = true
	}
	if r := e.rpc("restartShards", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}, "shardIds": []int{0}}); r.ResponseCode != api.OK {
		t.Fatalf("restartShards: %+v", r)
	}
	e.await("hello", "instance 0 replaced", func(ts map[string][]api.ScheduledTask) bool {
		for _, tk := range ts["RUNNING"] {
			if tk.AssignedTask.InstanceID == 0 && !old[tk.AssignedTask.TaskID] && old[tk.AncestorID] {
				return len(ts["RUNNING"]) == 2
			}
		}
		return false
	})

	// Kill them all: every task ends, the job is gone.
	if r := e.rpc("killTasks", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}}); r.ResponseCode != api.OK {
		t.Fatalf("killTasks all: %+v", r)
	}
	e.await("hello", "all killed", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["RUNNING"]) == 0 && len(ts["KILLING"]) == 0 && len(ts["KILLED"]) == 4
	})
	if r := e.rpc("getJobs", map[string]any{"ownerRole": "www-data"}); len(r.Result.GetJobsResult.Configs) != 0 {
		t.Fatalf("jobs after killing everything: %+v", r.Result.GetJobsResult.Configs)
	}
	if r := e.rpc("killTasks", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}}); r.ResponseCode != api.InvalidRequest || r.Details[0].Message != "No tasks to kill." {
		t.Fatalf("killTasks of nothing: %+v", r)
	}
}

// A failing batch job is rescheduled until max_task_failures, then stays
// failed.
func TestFailingJobStopsAtMaxTaskFailures(t *testing.T) {
	e := start(t)
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("flaky", 1, false, 3, "exit 1")}); r.ResponseCode != api.OK {
		t.Fatalf("createJob: %+v", r)
	}
	e.await("flaky", "3 failures", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FAILED"]) == 3 })
	time.Sleep(time.Second)
	ts := e.tasks("flaky")
	if len(ts["FAILED"]) != 3 || len(ts) != 1 {
		t.Fatalf("after max_task_failures: %v", summary(ts))
	}
	counts := map[int]bool{}
	for _, tk := range ts["FAILED"] {
		counts[tk.FailureCount] = true
	}
	if !counts[1] || !counts[2] || !counts[3] {
		t.Errorf("failure counts %v", counts)
	}
}

// TestRestartKeepsEverything stops the scheduler mid-flight and starts a
// new one on the same store: the same framework id, the same tasks, and
// the running ones still RUNNING after reconciliation.
func TestRestartKeepsEverything(t *testing.T) {
	e := start(t)
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("durable", 2, true, 1, "sleep 600")}); r.ResponseCode != api.OK {
		t.Fatalf("createJob: %+v", r)
	}
	before := e.await("durable", "2 RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 2 })
	e.stop()
	e.startScheduler()
	after := e.await("durable", "2 RUNNING again", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 2 })
	for i := range before["RUNNING"] {
		if before["RUNNING"][i].AssignedTask.TaskID != after["RUNNING"][i].AssignedTask.TaskID {
			t.Fatalf("tasks changed across the restart: %v → %v", before["RUNNING"], after["RUNNING"])
		}
	}
	if len(after) != 1 {
		t.Fatalf("tasks after restart: %v", summary(after))
	}
	st := e.cluster.Agent.State()
	if n := len(st["frameworks"].([]map[string]any)); n != 1 {
		t.Fatalf("%d frameworks on the agent: the framework id changed", n)
	}
}

// A PARTITIONED task whose job keeps partitioned tasks comes back RUNNING
// through the periodic reconciliation.
func TestPeriodicReconciliationRevivesPartitioned(t *testing.T) {
	e := start(t)
	j := jobConfig("partitioned", 1, true, 1, "sleep 600")
	j.TaskConfig.PartitionPolicy = &api.PartitionPolicy{Reschedule: false}
	if r := e.rpc("createJob", map[string]any{"description": j}); r.ResponseCode != api.OK {
		t.Fatalf("createJob: %+v", r)
	}
	ts := e.await("partitioned", "RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 1 })
	id := ts["RUNNING"][0].AssignedTask.TaskID
	if r := e.rpc("forceTaskState", map[string]any{"taskId": id, "status": "PARTITIONED"}); r.ResponseCode != api.OK {
		t.Fatalf("forceTaskState: %+v", r)
	}
	e.await("partitioned", "PARTITIONED then RUNNING again", func(ts map[string][]api.ScheduledTask) bool {
		if len(ts["RUNNING"]) != 1 || ts["RUNNING"][0].AssignedTask.TaskID != id {
			return false
		}
		for _, ev := range ts["RUNNING"][0].TaskEvents {
			if ev.Status == "PARTITIONED" {
				return true
			}
		}
		return false
	})
}

// TestReconciliationKillsDuplicate: when the scheduler takes a task for
// ended while its process still runs (here forced to FAILED; before agent
// authentication, by a forged TASK_FAILED), the instance is rescheduled
// and two tasks run for it. Reconciliation must find the one the scheduler
// believes terminal still running, and kill it, as Aurora kills what it
// does not know as running: in the end one task runs for the instance,
// on Mesos as in the store.
func TestReconciliationKillsDuplicate(t *testing.T) {
	e := start(t)
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("dup", 1, true, 0, "sleep 600")}); r.ResponseCode != api.OK {
		t.Fatalf("createJob: %+v", r)
	}
	ts := e.await("dup", "RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 1 })
	orig := ts["RUNNING"][0].AssignedTask.TaskID
	if r := e.rpc("forceTaskState", map[string]any{"taskId": orig, "status": "FAILED"}); r.ResponseCode != api.OK {
		t.Fatalf("forceTaskState: %+v", r)
	}
	ts = e.await("dup", "a replacement RUNNING", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["RUNNING"]) == 1 && ts["RUNNING"][0].AssignedTask.TaskID != orig
	})
	repl := ts["RUNNING"][0].AssignedTask.TaskID
	// Mesos' view: the agent's live tasks.
	live := func() []string {
		var out []string
		resp, err := http.Get(e.cluster.AgentURL + "/state")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Frameworks []struct {
				Executors []struct {
					Tasks []struct {
						ID    string `json:"id"`
						State string `json:"state"`
					} `json:"tasks"`
				} `json:"executors"`
			} `json:"frameworks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		for _, fw := range st.Frameworks {
			for _, ex := range fw.Executors {
				for _, tk := range ex.Tasks {
					if tk.State == "TASK_RUNNING" || tk.State == "TASK_STARTING" || tk.State == "TASK_STAGING" {
						out = append(out, tk.ID)
					}
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := live()
		if len(l) == 1 && l[0] == repl {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live tasks on the agent %v, want only the replacement %s (the original %s killed)", l, repl, orig)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ts := e.tasks("dup"); len(ts["RUNNING"]) != 1 || ts["RUNNING"][0].AssignedTask.TaskID != repl {
		t.Fatalf("tasks %v", summary(ts))
	}
}
