package observer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/executor"
	"github.com/aurorabox/aurorabox/executor/assigned"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// The test binary doubles as the executor that the in-process agent
// launches (see mesostest).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "executor" {
		// The task runs as the test's user: its role has no user.
		if err := executor.Run(context.Background(), executor.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), NoSetuid: true}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// launchThermos launches a one-process Aurora task through the real agent
// and executor, as the scheduler would.
func launchThermos(c *mesostest.Cluster, id, process, cmdline string) {
	j := schema.Job{Name: "live", Role: "nobody-role", Environment: "test", Cluster: "devcluster",
		Task: schema.Task{Name: "live", Processes: []schema.Process{{Name: process, Cmdline: cmdline}},
			Resources: &schema.Resources{CPU: 0.1, RAM: 64 << 20, Disk: 64 << 20}}}
	c.Launch(func(o mesos.Offer) mesos.TaskInfo {
		at := api.AssignedTask{TaskID: id, SlaveID: o.AgentID.Value, SlaveHost: o.Hostname, AssignedPorts: map[string]int{},
			Task: api.TaskConfig{Job: api.JobKey{Role: j.Role, Environment: j.Environment, Name: j.Name}}}
		data, err := assigned.Encode(at, j)
		if err != nil {
			c.T.Fatal(err)
		}
		return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Data: data,
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(64).Resource},
			Executor:  c.Executor("thermos-"+id, "executor")}
	})
}

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A live task under a real agent and executor: the observer finds it, shows
// its running process with measured usage, follows its log as it grows,
// and sees it finish when it is killed.
func TestLiveTask(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent")
	}
	c := mesostest.Start(t)
	const id = "nobody-role-test-live-0-1234"
	launchThermos(c, id, "ticker", `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.1; done`)
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		if st := c.Update(id, 30*time.Second); st.GetState() != want {
			t.Fatalf("%s: %s (%s)", id, st.GetState(), st.GetMessage())
		}
	}
	o := New(Config{WorkDir: c.WorkDir, ScanInterval: 50 * time.Millisecond})
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()

	var task map[string]observerapi.Task
	eventually(t, "the observer to see the running process", 20*time.Second, func() bool {
		code, body := fetch(t, srv.URL+"/j/task/"+id)
		task = nil
		return code == 200 && json.Unmarshal([]byte(body), &task) == nil && len(task[id].Processes["running"]) == 1
	})
	tj := task[id]
	if !tj.Active || tj.State != "ACTIVE" || tj.User == "" || !strings.HasPrefix(tj.ExecutorID, "thermos-") {
		t.Fatalf("task: %+v", tj)
	}
	// Usage, measured on this host: the task's cgroup or its process tree.
	// A run counts as running, and is measured, from its fork; it is
	// RUNNING once the runner recorded its start, a moment later.
	var run observerapi.Run
	eventually(t, "usage of the running process", 10*time.Second, func() bool {
		_, body := fetch(t, srv.URL+"/j/process/"+id+"/ticker")
		run = observerapi.Run{}
		return json.Unmarshal([]byte(body), &run) == nil && run.Used != nil && run.Used.RAM > 0 && run.State == "RUNNING"
	})
	if run.ProcessRun != 0 || run.Used.Threads < 1 {
		t.Fatalf("run: %+v used %+v", run, *run.Used)
	}
	_, body := fetch(t, srv.URL+"/j/task/"+id)
	json.Unmarshal([]byte(body), &task)
	if u := task[id].ResourceConsumption; (u.Source != "cgroup" && u.Source != "proc") || u.RAM <= 0 || u.Disk <= 0 {
		t.Fatalf("task usage: %+v", u)
	}
	t.Logf("task usage measured by %s: %+v", task[id].ResourceConsumption.Source, task[id].ResourceConsumption)

	// The log grows, and reading on from the previous end gets the next ticks.
	logdata := srv.URL + "/logdata/" + id + "/ticker/0/stdout"
	var first observerapi.Chunk
	eventually(t, "ticks in the log", 10*time.Second, func() bool {
		_, body := fetch(t, logdata+"?offset=0")
		return json.Unmarshal([]byte(body), &first) == nil && strings.Contains(first.Data, "tick 3\n")
	})
	var next observerapi.Chunk
	eventually(t, "more ticks after the first read", 10*time.Second, func() bool {
		_, body := fetch(t, fmt.Sprintf("%s?offset=%d", logdata, first.Offset+first.Length))
		return json.Unmarshal([]byte(body), &next) == nil && next.Length > 0
	})
	if !strings.HasPrefix(next.Data, "tick ") || next.Offset != first.Length {
		t.Fatalf("next chunk %+v after %+v", next, first)
	}

	// The pages.
	for _, tc := range []struct{ path, want string }{
		{"/", `data-task="` + id + `" data-state="ACTIVE"`},
		{"/task/" + id, `data-process="ticker" data-state="RUNNING"`},
		{"/process/" + id + "/ticker", `data-run="0" data-state="RUNNING"`},
		{"/logs/" + id + "/ticker/0/stdout", `data-src="/logdata/` + id + `/ticker/0/stdout"`},
		{"/browse/" + id + "/.logs/ticker/0", `data-name="stdout"`},
	} {
		if code, body := fetch(t, srv.URL+tc.path); code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, lacks %q:\n%s", tc.path, code, tc.want, body)
		}
	}

	// Killed: the task moves to finished, KILLED, and its usage is gone.
	c.Kill(id)
	if st := c.Update(id, 60*time.Second); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %s", st.GetState())
	}
	eventually(t, "the task among the finished", 20*time.Second, func() bool {
		_, body := fetch(t, srv.URL+"/j/task_ids/finished")
		var ids observerapi.TaskIDs
		return json.Unmarshal([]byte(body), &ids) == nil && len(ids.Tasks) == 1 && ids.Tasks[0].TaskID == id && ids.Tasks[0].State == "KILLED"
	})
	_, body = fetch(t, srv.URL+"/j/process/"+id+"/ticker")
	run = observerapi.Run{}
	if json.Unmarshal([]byte(body), &run); run.State != "KILLED" || run.Used != nil {
		t.Fatalf("after the kill: %s", body)
	}
}
