package scheduler_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// tieredJob is a service of a role in a tier, each task of cpus and ram
// MB (plus the executor's 0.01 CPU and 32 MB), sleeping.
func tieredJob(role, name, tier string, instances int, cpus float64, ram int64) api.JobConfiguration {
	key := api.JobKey{Role: role, Environment: "prod", Name: name}
	data, _ := json.Marshal(schema.Job{
		Name: name, Role: role, Environment: key.Environment, Cluster: "devcluster", Service: true,
		Task: schema.Task{Name: name, Processes: []schema.Process{{Name: "main", Cmdline: "sleep 600", MinDuration: ptr(0.0)}}},
	})
	return api.JobConfiguration{
		Key: key, Owner: api.Identity{User: role}, InstanceCount: instances,
		TaskConfig: api.TaskConfig{
			Job: key, Owner: api.Identity{User: role}, IsService: true, MaxTaskFailures: 1, Tier: tier,
			Resources:      []api.Resource{{NumCpus: ptr(cpus)}, {RAMMb: ptr(ram)}, {DiskMb: ptr(int64(16))}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)},
		},
	}
}

// roleTasks returns a job's tasks by status.
func (e *env) roleTasks(k api.JobKey) map[string][]api.ScheduledTask {
	e.t.Helper()
	r := e.mustOK("getTasksStatus", map[string]any{"query": api.TaskQuery{Role: k.Role, Environment: k.Environment, JobName: k.Name}})
	out := map[string][]api.ScheduledTask{}
	for _, t := range r.Result.ScheduleStatusResult.Tasks {
		out[t.Status] = append(out[t.Status], t)
	}
	return out
}

// A production job that fits only by preemption, on one agent full of a
// preemptible job of another role: after the preemption delay two of the
// preemptible tasks (just enough) go PREEMPTING, with Aurora's message
// naming the production task, then KILLED, and are replaced by PENDING
// tasks that find no room; the production task lands on the agent.
func TestPreemptionOnAFullAgent(t *testing.T) {
	// 1.5 CPU and 512 MB: four tasks of 0.25 CPU and 128 MB fill its RAM.
	res, err := agent.ParseResources("cpus:1.5;mem:512;disk:1024;ports:[31000-31010]")
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{env: &env{t: t, cluster: mesostest.StartAgent(t, func(c *agent.Config) { c.Resources = res }), dataDir: t.TempDir()},
		configure: func(c *scheduler.Config) {
			c.PreemptionDelay, c.PreemptionSlotSearchInterval = 100*time.Millisecond, 100*time.Millisecond
			// The sizes below count on the default overhead (a race
			// build's executor fits in these tasks' 128 MB too).
			c.Overhead = scheduler.DevExecutorOverhead
		}}
	e.restart()
	t.Cleanup(func() { e.stop() })

	batch := tieredJob("batch", "crunch", "preemptible", 4, 0.24, 96)
	e.mustOK("createJob", map[string]any{"description": batch})
	var before map[string][]api.ScheduledTask
	e.eventually("4 crunch tasks RUNNING", func() bool {
		before = e.roleTasks(batch.Key)
		return len(before["RUNNING"]) == 4 && len(before) == 1
	})

	// 0.5 CPU and 256 MB with the overhead: it needs two victims' RAM.
	web := tieredJob("www-data", "web", "preferred", 1, 0.49, 224)
	if r := e.rpc("createJob", map[string]any{"description": web}); r.ResponseCode != api.InvalidRequest {
		t.Fatalf("createJob of a production job without quota: %+v", r)
	}
	e.mustOK("setQuota", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{NumCpus: 1, RAMMb: 512, DiskMb: 512}})
	e.mustOK("createJob", map[string]any{"description": web})

	var webTasks map[string][]api.ScheduledTask
	e.eventually("web RUNNING", func() bool {
		webTasks = e.roleTasks(web.Key)
		return len(webTasks["RUNNING"]) == 1
	})
	webTask := webTasks["RUNNING"][0].AssignedTask
	if webTask.SlaveHost != before["RUNNING"][0].AssignedTask.SlaveHost {
		t.Errorf("web runs on %s", webTask.SlaveHost)
	}
	var after map[string][]api.ScheduledTask
	e.eventually("2 crunch tasks KILLED and replaced", func() bool {
		after = e.roleTasks(batch.Key)
		return len(after["KILLED"]) == 2 && len(after["PENDING"]) == 2 && len(after["RUNNING"]) == 2 && len(after) == 3
	})
	killed := map[string]bool{}
	for _, tk := range after["KILLED"] {
		killed[tk.AssignedTask.TaskID] = true
		var statuses []string
		msg := ""
		for _, ev := range tk.TaskEvents {
			statuses = append(statuses, ev.Status)
			if ev.Status == "PREEMPTING" {
				msg = ev.Message
			}
		}
		if n := len(statuses); n < 3 || statuses[n-3] != "RUNNING" || statuses[n-2] != "PREEMPTING" || statuses[n-1] != "KILLED" {
			t.Errorf("events of %s: %v", tk.AssignedTask.TaskID, statuses)
		}
		if msg != "Preempting in favor of "+webTask.TaskID {
			t.Errorf("PREEMPTING message of %s: %q", tk.AssignedTask.TaskID, msg)
		}
	}
	for _, tk := range after["PENDING"] {
		if !killed[tk.AncestorID] {
			t.Errorf("PENDING task %s replaces %q, not a preempted task", tk.AssignedTask.TaskID, tk.AncestorID)
		}
	}
	// The production task waited for its slot: it was never placed
	// elsewhere or before the victims were gone.
	var statuses []string
	for _, ev := range webTasks["RUNNING"][0].TaskEvents {
		statuses = append(statuses, ev.Status)
	}
	if got := len(statuses); got != 4 || statuses[0] != "PENDING" || statuses[1] != "ASSIGNED" {
		t.Errorf("web's events: %v", statuses)
	}
	v := e.sched.PreemptorVars()
	if v["preemptor_tasks_preempted_non_prod"] != 2 || v["preemptor_tasks_preempted_prod"] != 0 || v["preemptor_slot_search_successful_for_prod"] != 1 {
		t.Errorf("preemptor vars %v", v)
	}
}
