package scheduler_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// Scheduler-driven job updates against the in-process Mesos: tasks really
// run, are killed and replaced.

// updateRequest asks for j's configuration and instance count.
func updateRequest(j api.JobConfiguration, s api.JobUpdateSettings) map[string]any {
	return map[string]any{"request": api.JobUpdateRequest{TaskConfig: j.TaskConfig, InstanceCount: j.InstanceCount, Settings: s,
		Metadata: []api.Metadata{{Key: "org.apache.aurora.client.update_id", Value: "test-uuid"}}}, "message": "test update"}
}

func batch(size int) *api.JobUpdateStrategy {
	return &api.JobUpdateStrategy{BatchStrategy: &api.BatchJobUpdateStrategy{GroupSize: size}}
}

// startUpdate starts an update that must be accepted.
func (e *env) startUpdate(j api.JobConfiguration, s api.JobUpdateSettings) api.JobUpdateKey {
	e.t.Helper()
	r := e.mustOK("startJobUpdate", updateRequest(j, s))
	res := r.Result.StartJobUpdateResult
	if res == nil || res.Key.ID == "" || res.Key.Job != j.Key || res.UpdateSummary.Key != res.Key {
		e.t.Fatalf("startJobUpdate result: %+v", r)
	}
	return res.Key
}

func (e *env) updateDetails(key api.JobUpdateKey) api.JobUpdateDetails {
	e.t.Helper()
	r := e.mustOK("getJobUpdateDetails", map[string]any{"key": key})
	d := r.Result.GetJobUpdateDetailsResult
	if d.Details == nil || len(d.DetailsList) != 1 {
		e.t.Fatalf("getJobUpdateDetails: %+v", d)
	}
	return *d.Details
}

// awaitUpdate polls until the update is in one of the statuses.
func (e *env) awaitUpdate(key api.JobUpdateKey, statuses ...string) api.JobUpdateDetails {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := e.updateDetails(key)
		for _, s := range statuses {
			if d.Update.Summary.State.Status == s {
				return d
			}
		}
		if time.Now().After(deadline) {
			e.dumpExecutorLogs()
			e.t.Fatalf("update %s: timed out waiting for %v:\n%s", key.ID, statuses, describeUpdate(d))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describeUpdate shows an update's events, for failures and logs.
func describeUpdate(d api.JobUpdateDetails) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %s\n", d.Update.Summary.State.Status)
	for _, ev := range d.UpdateEvents {
		fmt.Fprintf(&b, "  update %s %s %q\n", ev.Status, ev.User, ev.Message)
	}
	for _, ev := range d.InstanceEvents {
		fmt.Fprintf(&b, "  instance %d %s\n", ev.InstanceID, ev.Action)
	}
	return b.String()
}

// instanceEvents are "N ACTION" lines.
func instanceEvents(d api.JobUpdateDetails) []string {
	var out []string
	for _, ev := range d.InstanceEvents {
		out = append(out, fmt.Sprintf("%d %s", ev.InstanceID, ev.Action))
	}
	return out
}

func updateStatuses(d api.JobUpdateDetails) string {
	var out []string
	for _, ev := range d.UpdateEvents {
		out = append(out, ev.Status)
	}
	return strings.Join(out, ",")
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

// cmdOf is the command line a task runs.
func cmdOf(t testing.TB, tc api.TaskConfig) string {
	var j schema.Job
	if err := json.Unmarshal([]byte(tc.ExecutorConfig.Data), &j); err != nil {
		t.Fatal(err)
	}
	return j.Task.Processes[0].Cmdline
}

// runningCmds are instance → command of the job's RUNNING tasks, and
// whether every active task is RUNNING.
func (e *env) runningCmds(name string) map[int]string {
	out := map[int]string{}
	for _, t := range e.tasks(name)["RUNNING"] {
		out[t.AssignedTask.InstanceID] = cmdOf(e.t, t.AssignedTask.Task)
	}
	return out
}

// withShellHealthCheck gives j's task a shell health check, checked at
// once and every 100 ms; its first failure fails the task.
func withShellHealthCheck(t *testing.T, j api.JobConfiguration, cmd string) api.JobConfiguration {
	var a schema.Job
	if err := json.Unmarshal([]byte(j.TaskConfig.ExecutorConfig.Data), &a); err != nil {
		t.Fatal(err)
	}
	a.HealthCheckConfig = schema.HealthCheckConfig{HealthChecker: schema.HealthCheckerConfig{Shell: &schema.ShellHealthChecker{ShellCommand: cmd}},
		InitialIntervalSecs: ptr(0.0), IntervalSecs: ptr(0.1)}
	b, _ := json.Marshal(a)
	j.TaskConfig.ExecutorConfig.Data = string(b)
	return j
}

func allRunning(n int) func(map[string][]api.ScheduledTask) bool {
	return func(ts map[string][]api.ScheduledTask) bool {
		active := 0
		for st, l := range ts {
			switch st {
			case "FINISHED", "FAILED", "KILLED", "LOST":
			default:
				active += len(l)
			}
		}
		return len(ts["RUNNING"]) == n && active == n
	}
}

// An update that changes the configuration of three instances rolls
// forward in batches of two: (0,1) then (2); each old task is killed and
// replaced by one of the new configuration; the job's stored
// configuration becomes the new one.
func TestUpdateRollsForwardInBatches(t *testing.T) {
	e := start(t)
	j := jobConfig("rolling", 3, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	before := e.await("rolling", "3 RUNNING", allRunning(3))
	j2 := jobConfig("rolling", 3, true, 1, "sleep 601")
	key := e.startUpdate(j2, api.JobUpdateSettings{UpdateStrategy: batch(2), MaxFailedInstances: 0})
	d := e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ROLLED_BACK", "ERROR")
	if d.Update.Summary.State.Status != "ROLLED_FORWARD" || updateStatuses(d) != "ROLLING_FORWARD,ROLLED_FORWARD" {
		t.Fatalf("update:\n%s", describeUpdate(d))
	}
	ev := instanceEvents(d)
	if len(ev) != 6 {
		t.Fatalf("instance events %v", ev)
	}
	// Batches: instance 2 starts only once 0 and 1 are done.
	for _, i := range []int{0, 1} {
		if !(indexOf(ev, fmt.Sprintf("%d INSTANCE_UPDATING", i)) < indexOf(ev, fmt.Sprintf("%d INSTANCE_UPDATED", i)) &&
			indexOf(ev, fmt.Sprintf("%d INSTANCE_UPDATED", i)) < indexOf(ev, "2 INSTANCE_UPDATING")) {
			t.Fatalf("instance events out of batch order: %v", ev)
		}
	}
	if d.Update.Summary.User != "unknown" || len(d.Update.Summary.Metadata) != 1 || d.UpdateEvents[0].Message != "test update" {
		t.Errorf("summary %+v, first event %+v", d.Update.Summary, d.UpdateEvents[0])
	}
	in := d.Update.Instructions
	if len(in.InitialState) != 1 || cmdOf(t, in.InitialState[0].Task) != "sleep 600" || in.DesiredState == nil ||
		cmdOf(t, in.DesiredState.Task) != "sleep 601" || fmt.Sprint(in.DesiredState.Instances) != "[{0 2}]" {
		t.Errorf("instructions %+v", in)
	}
	after := e.await("rolling", "3 RUNNING with the new config", allRunning(3))
	for _, tk := range after["RUNNING"] {
		if c := cmdOf(t, tk.AssignedTask.Task); c != "sleep 601" {
			t.Errorf("instance %d runs %q", tk.AssignedTask.InstanceID, c)
		}
	}
	killed := map[string]bool{}
	for _, tk := range after["KILLED"] {
		last := tk.TaskEvents[len(tk.TaskEvents)-1]
		if cmdOf(t, tk.AssignedTask.Task) != "sleep 600" || tk.TaskEvents[len(tk.TaskEvents)-2].Message != "Killed for job update." {
			t.Errorf("killed task %s: %+v", tk.AssignedTask.TaskID, last)
		}
		killed[tk.AssignedTask.TaskID] = true
	}
	for _, tk := range before["RUNNING"] {
		if !killed[tk.AssignedTask.TaskID] {
			t.Errorf("old task %s not killed", tk.AssignedTask.TaskID)
		}
	}
	if r := e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}); cmdOf(t, r.Result.GetJobsResult.Configs[0].TaskConfig) != "sleep 601" {
		t.Errorf("stored job config not updated: %+v", r.Result.GetJobsResult.Configs)
	}
	// The new tasks fit where the old ones ran: each kill reserved the
	// agent, and the reservations are gone with the update.
	if v := e.vars(); v["job_update_agent_reservations_made"] != 3 || v["job_update_agent_reservations"] != 0 || v["job_updates"] != 1 || v["job_updates_active"] != 0 {
		t.Errorf("vars %v", v)
	}
	// The same request again changes nothing.
	if r := e.mustOK("startJobUpdate", updateRequest(j2, api.JobUpdateSettings{UpdateGroupSize: 1})); r.Result != nil || details(r) != "Job is unchanged by proposed update." {
		t.Errorf("no-op update: %+v", r)
	}
	diff := e.mustOK("getJobUpdateDiff", updateRequest(j2, api.JobUpdateSettings{UpdateGroupSize: 1})).Result.GetJobUpdateDiffResult
	if len(diff.Add)+len(diff.Remove)+len(diff.Update) != 0 || len(diff.Unchanged) != 1 || fmt.Sprint(diff.Unchanged[0].Instances) != "[{0 2}]" {
		t.Errorf("diff after the update: %+v", diff)
	}
	// Summaries, by job and status.
	sums := e.mustOK("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{JobKey: &j.Key, UpdateStatuses: []string{"ROLLED_FORWARD"}}}).
		Result.GetJobUpdateSummariesResult.UpdateSummaries
	if len(sums) != 1 || sums[0].Key != key || sums[0].State.CreatedTimestampMs == 0 || sums[0].State.LastModifiedTimestampMs < sums[0].State.CreatedTimestampMs {
		t.Errorf("summaries %+v", sums)
	}
	if sums := e.mustOK("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{UpdateStatuses: []string{"ROLLING_FORWARD"}}}).
		Result.GetJobUpdateSummariesResult.UpdateSummaries; len(sums) != 0 {
		t.Errorf("active summaries %+v", sums)
	}
	// The UI shows it.
	for _, path := range []string{"/updates", "/scheduler/www-data/prod/rolling/update/" + key.ID} {
		body := e.getPage(path)
		if !strings.Contains(body, key.ID) || !strings.Contains(body, "ROLLED_FORWARD") {
			t.Errorf("%s does not show the update", path)
		}
	}
}

// getPage GETs a UI page, which must answer 200.
func (e *env) getPage(path string) string {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// A new configuration that fails rolls back: with no failure allowed,
// instance 0's first failed task fails the update, which puts the old
// configuration back, last instance first, and ends ROLLED_BACK.
func TestFailingUpdateRollsBack(t *testing.T) {
	e := start(t)
	j := jobConfig("failing", 2, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("failing", "2 RUNNING", allRunning(2))
	// The new tasks are RUNNING at once and fail their first health check
	// (as in Aurora 0.11), within the 5 s watch (watch_secs).
	key := e.startUpdate(withShellHealthCheck(t, jobConfig("failing", 2, true, 1, "sleep 600"), "exit 1"),
		api.JobUpdateSettings{UpdateGroupSize: 1, RollbackOnFailure: true, MinWaitInInstanceRunningMs: 5000})
	d := e.awaitUpdate(key, "ROLLED_BACK", "ROLLED_FORWARD", "FAILED", "ERROR")
	if got := updateStatuses(d); got != "ROLLING_FORWARD,ROLLING_BACK,ROLLED_BACK" {
		t.Fatalf("update statuses %s:\n%s", got, describeUpdate(d))
	}
	// Instance 1 was never reached going forward; rolling back starts
	// from it (the last instance), then puts 0 back.
	if got := strings.Join(instanceEvents(d), ","); got != "0 INSTANCE_UPDATING,0 INSTANCE_UPDATE_FAILED,"+
		"1 INSTANCE_ROLLING_BACK,1 INSTANCE_ROLLED_BACK,0 INSTANCE_ROLLING_BACK,0 INSTANCE_ROLLED_BACK" {
		t.Fatalf("instance events %s", got)
	}
	e.await("failing", "2 RUNNING", allRunning(2))
	if got := e.runningCmds("failing"); got[0] != "sleep 600" || got[1] != "sleep 600" {
		t.Fatalf("after the rollback the job runs %v", got)
	}
	for _, tk := range e.tasks("failing")["RUNNING"] {
		if strings.Contains(tk.AssignedTask.Task.ExecutorConfig.Data, "exit 1") {
			t.Fatalf("instance %d runs the new config", tk.AssignedTask.InstanceID)
		}
	}
	failed := e.tasks("failing")["FAILED"]
	if len(failed) == 0 || !strings.Contains(failed[0].AssignedTask.Task.ExecutorConfig.Data, "exit 1") {
		t.Fatalf("no failed task of the new config: %v", summary(e.tasks("failing")))
	}
	if r := e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}); strings.Contains(r.Result.GetJobsResult.Configs[0].TaskConfig.ExecutorConfig.Data, "exit 1") {
		t.Errorf("the job's config changed: %+v", r.Result.GetJobsResult.Configs)
	}
}

// Pause and resume: a batch update with autopause stops after each batch
// (deterministically, before the next one starts); the user resumes it.
// A user pause of a rolling update, with a message, is recorded, and
// resume goes on; abort ends it where it stands.
func TestUpdatePauseResume(t *testing.T) {
	e := start(t)
	j := jobConfig("paused", 3, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("paused", "3 RUNNING", allRunning(3))
	strategy := &api.JobUpdateStrategy{VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{GroupSizes: []int{1, 2}, AutopauseAfterBatch: true}}
	key := e.startUpdate(jobConfig("paused", 3, true, 1, "sleep 601"), api.JobUpdateSettings{UpdateStrategy: strategy})
	d := e.awaitUpdate(key, "ROLL_FORWARD_PAUSED")
	if got := strings.Join(instanceEvents(d), ","); got != "0 INSTANCE_UPDATING,0 INSTANCE_UPDATED" {
		t.Fatalf("paused after the first batch with %s", got)
	}
	if r := e.rpc("pauseJobUpdate", map[string]any{"key": key, "message": "again"}); r.ResponseCode != api.InvalidRequest {
		t.Errorf("pause of a paused update: %+v", r)
	}
	e.mustOK("resumeJobUpdate", map[string]any{"key": key, "message": "go on"})
	d = e.awaitUpdate(key, "ROLLED_FORWARD")
	if got := updateStatuses(d); got != "ROLLING_FORWARD,ROLL_FORWARD_PAUSED,ROLLING_FORWARD,ROLLED_FORWARD" {
		t.Fatalf("statuses %s", got)
	}
	if ev := d.UpdateEvents[2]; ev.User != "unknown" || ev.Message != "go on" {
		t.Errorf("resume event %+v", ev)
	}
	if got := e.runningCmds("paused"); len(got) != 3 || got[0] != "sleep 601" || got[1] != "sleep 601" || got[2] != "sleep 601" {
		t.Errorf("after the update the job runs %v", got)
	}

	// A user pause while rolling: the update watches instance 0 for an
	// hour, so it is rolling when paused.
	key = e.startUpdate(jobConfig("paused", 3, true, 1, "sleep 602"), api.JobUpdateSettings{UpdateGroupSize: 1, MinWaitInInstanceRunningMs: 3600_000})
	e.awaitUpdate(key, "ROLLING_FORWARD")
	e.mustOK("pauseJobUpdate", map[string]any{"key": key, "message": "hello"})
	d = e.awaitUpdate(key, "ROLL_FORWARD_PAUSED")
	if ev := d.UpdateEvents[len(d.UpdateEvents)-1]; ev.Message != "hello" || ev.User != "unknown" {
		t.Errorf("pause event %+v", ev)
	}
	active := e.mustOK("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{Role: "www-data",
		UpdateStatuses: []string{"ROLLING_FORWARD", "ROLL_FORWARD_PAUSED"}}}).Result.GetJobUpdateSummariesResult.UpdateSummaries
	if len(active) != 1 || active[0].Key != key {
		t.Errorf("active updates %+v", active)
	}
	e.mustOK("resumeJobUpdate", map[string]any{"key": key})
	e.awaitUpdate(key, "ROLLING_FORWARD")
	if r := e.mustOK("pulseJobUpdate", map[string]any{"key": key}); r.Result.PulseJobUpdateResult.Status != "OK" {
		t.Errorf("pulse: %+v", r)
	}
	e.mustOK("abortJobUpdate", map[string]any{"key": key, "message": "enough"})
	d = e.awaitUpdate(key, "ABORTED")
	if got := updateStatuses(d); got != "ROLLING_FORWARD,ROLL_FORWARD_PAUSED,ROLLING_FORWARD,ABORTED" {
		t.Errorf("statuses %s", got)
	}
	if r := e.mustOK("pulseJobUpdate", map[string]any{"key": key}); r.Result.PulseJobUpdateResult.Status != "FINISHED" {
		t.Errorf("pulse of an aborted update: %+v", r)
	}
	if r := e.rpc("resumeJobUpdate", map[string]any{"key": key}); r.ResponseCode != api.InvalidRequest {
		t.Errorf("resume of an aborted update: %+v", r)
	}
}

// While an update is active, createJob, killTasks, restartShards and
// addInstances on its job answer JOB_UPDATING_ERROR, and a second update
// is refused with the first one's summary; other jobs are not affected,
// and once the update has ended the job can be changed again.
func TestJobUpdatingError(t *testing.T) {
	e := start(t)
	j := jobConfig("guarded", 2, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("guarded", "2 RUNNING", allRunning(2))
	key := e.startUpdate(jobConfig("guarded", 2, true, 1, "sleep 601"), api.JobUpdateSettings{UpdateGroupSize: 1, MinWaitInInstanceRunningMs: 3600_000})
	for method, params := range map[string]any{
		"createJob":     map[string]any{"description": j},
		"killTasks":     map[string]any{"job": j.Key},
		"restartShards": map[string]any{"job": j.Key, "shardIds": []int{1}},
		"addInstances":  map[string]any{"key": api.InstanceKey{JobKey: j.Key, InstanceID: 1}, "count": 1},
	} {
		if r := e.rpc(method, params); r.ResponseCode != api.JobUpdatingError || !strings.Contains(details(r), key.ID) {
			t.Errorf("%s during an update: %+v", method, r)
		}
	}
	r := e.rpc("startJobUpdate", updateRequest(jobConfig("guarded", 2, true, 1, "sleep 602"), api.JobUpdateSettings{UpdateGroupSize: 1}))
	if r.ResponseCode != api.InvalidRequest || r.Result == nil || r.Result.StartJobUpdateResult.Key != key ||
		r.Result.StartJobUpdateResult.UpdateSummary.Metadata[0].Value != "test-uuid" || !strings.HasPrefix(details(r), "An active update already exists") {
		t.Errorf("second update: %+v", r)
	}
	other := jobConfig("other", 1, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": other})
	e.mustOK("killTasks", map[string]any{"job": other.Key})
	e.mustOK("abortJobUpdate", map[string]any{"key": key})
	e.mustOK("killTasks", map[string]any{"job": j.Key})
}

// An update creates a job that does not exist (adding instances only),
// then shrinks it (killing only) and grows it back: 3 → 1 → 3 instances.
// The scheduler keeps two ended updates per job: the first is forgotten.
func TestUpdateAddOnlyKillOnly(t *testing.T) {
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.UpdateHistoryPerJob = 2 })
	var keys []api.JobUpdateKey
	for _, n := range []int{3, 1, 3} {
		key := e.startUpdate(jobConfig("sized", n, true, 1, "sleep 600"), api.JobUpdateSettings{UpdateStrategy: batch(2)})
		d := e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ERROR", "ROLLED_BACK")
		if d.Update.Summary.State.Status != "ROLLED_FORWARD" {
			t.Fatalf("update to %d instances:\n%s", n, describeUpdate(d))
		}
		e.await("sized", fmt.Sprintf("%d RUNNING", n), allRunning(n))
		jobs := e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}).Result.GetJobsResult.Configs
		if len(jobs) != 1 || jobs[0].InstanceCount != n {
			t.Fatalf("after the update to %d instances the job is %+v", n, jobs)
		}
		ev := instanceEvents(d)
		sort.Strings(ev)
		var want []string
		switch n {
		case 3:
			if d.Update.Instructions.DesiredState == nil {
				t.Fatal("no desired state")
			}
			for i := 1; i < 3; i++ {
				want = append(want, fmt.Sprintf("%d INSTANCE_UPDATED", i), fmt.Sprintf("%d INSTANCE_UPDATING", i))
			}
			if len(d.Update.Instructions.InitialState) == 0 {
				want = append([]string{"0 INSTANCE_UPDATED", "0 INSTANCE_UPDATING"}, want...)
			}
		case 1:
			want = []string{"1 INSTANCE_UPDATED", "1 INSTANCE_UPDATING", "2 INSTANCE_UPDATED", "2 INSTANCE_UPDATING"}
		}
		if strings.Join(ev, ",") != strings.Join(want, ",") {
			t.Errorf("update to %d: instance events %v, want %v", n, ev, want)
		}
		keys = append(keys, key)
	}
	sums := e.mustOK("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{}}).Result.GetJobUpdateSummariesResult.UpdateSummaries
	if len(sums) != 2 || sums[0].Key != keys[2] || sums[1].Key != keys[1] {
		t.Errorf("updates kept %+v, want the last two of %v, newest first", sums, keys)
	}
}

// Requests startJobUpdate refuses (§7.2), and the answer to one that
// changes nothing.
func TestStartJobUpdateValidation(t *testing.T) {
	e := start(t)
	j := jobConfig("valid", 2, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	newCfg := jobConfig("valid", 2, true, 1, "sleep 601")
	notService := jobConfig("valid", 2, false, 1, "sleep 601")
	sla := jobConfig("valid", 2, true, 1, "sleep 601")
	prod := jobConfig("valid", 2, true, 1, "sleep 601")
	prod.TaskConfig.Tier = "preferred"
	for _, c := range []struct {
		name string
		j    api.JobConfiguration
		s    api.JobUpdateSettings
		want string
	}{
		{"not a service", notService, api.JobUpdateSettings{UpdateGroupSize: 1}, "Updates are not supported for non-service tasks."},
		{"group size 0", newCfg, api.JobUpdateSettings{}, "Update group size must be positive."},
		{"batch size 0", newCfg, api.JobUpdateSettings{UpdateStrategy: batch(0)}, "Update group size must be positive."},
		{"variable batch with 0", newCfg, api.JobUpdateSettings{UpdateStrategy: &api.JobUpdateStrategy{
			VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{GroupSizes: []int{1, 0}}}}, "Update group size must be positive."},
		{"no variable batch sizes", newCfg, api.JobUpdateSettings{UpdateStrategy: &api.JobUpdateStrategy{
			VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{}}}, "Update group sizes must add up to a positive number."},
		{"two strategies", newCfg, api.JobUpdateSettings{UpdateStrategy: &api.JobUpdateStrategy{BatchStrategy: &api.BatchJobUpdateStrategy{GroupSize: 1},
			QueueStrategy: &api.QueueJobUpdateStrategy{GroupSize: 1}}}, "Unknown update strategy"},
		{"no strategy", newCfg, api.JobUpdateSettings{UpdateStrategy: &api.JobUpdateStrategy{}}, "Unknown update strategy"},
		{"negative max per instance failures", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, MaxPerInstanceFailures: -1}, "Invalid maxPerInstanceFailures"},
		{"negative max failed instances", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, MaxFailedInstances: -1}, "Invalid maxFailedInstances"},
		{"too many failures", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, MaxPerInstanceFailures: 10001}, "Your update allows too many failures"},
		{"negative min wait", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, MinWaitInInstanceRunningMs: -1}, "Invalid minWaitInInstanceRunningMs"},
		{"negative pulse timeout", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, BlockIfNoPulsesAfterMs: -1}, "Invalid blockIfNoPulsesAfterMs"},
		{"slaAware without a policy", sla, api.JobUpdateSettings{UpdateGroupSize: 1, SlaAware: true}, "slaAware is true, but no task slaPolicy is specified."},
		{"instances out of scope", newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, UpdateOnlyTheseInstances: []api.Range{{First: 1, Last: 3}}},
			"The update request attempted to update specified instances that do not exist: [2 3]"},
		{"quota", prod, api.JobUpdateSettings{UpdateGroupSize: 1}, "Insufficient resource quota: CPU quota exceeded by 0.20 core(s)"},
	} {
		r := e.rpc("startJobUpdate", updateRequest(c.j, c.s))
		if r.ResponseCode != api.InvalidRequest || !strings.HasPrefix(details(r), c.want) {
			t.Errorf("%s: %s %q, want INVALID_REQUEST %q", c.name, r.ResponseCode, details(r), c.want)
		}
	}
	// In scope, only instance 1: the diff has it alone.
	scoped := updateRequest(newCfg, api.JobUpdateSettings{UpdateGroupSize: 1, UpdateOnlyTheseInstances: []api.Range{{First: 1, Last: 1}}})
	diff := e.mustOK("getJobUpdateDiff", scoped).Result.GetJobUpdateDiffResult
	if len(diff.Update) != 1 || fmt.Sprint(diff.Update[0].Instances) != "[{1 1}]" || cmdOf(t, diff.Update[0].Config) != "sleep 601" ||
		len(diff.Add)+len(diff.Remove)+len(diff.Unchanged) != 0 {
		t.Errorf("scoped diff %+v", diff)
	}
	// The job as it is: nothing to do, and no update is made.
	if r := e.mustOK("startJobUpdate", updateRequest(j, api.JobUpdateSettings{UpdateGroupSize: 1})); details(r) != "Job is unchanged by proposed update." || r.Result != nil {
		t.Errorf("no-op update: %+v", r)
	}
	if sums := e.mustOK("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{}}).Result.GetJobUpdateSummariesResult.UpdateSummaries; len(sums) != 0 {
		t.Errorf("updates were made: %+v", sums)
	}
	if r := e.rpc("pauseJobUpdate", map[string]any{"key": api.JobUpdateKey{Job: j.Key, ID: "nope"}}); r.ResponseCode != api.InvalidRequest {
		t.Errorf("pause of an unknown update: %+v", r)
	}
	if r := e.rpc("getJobUpdateSummaries", map[string]any{"jobUpdateQuery": api.JobUpdateQuery{UpdateStatuses: []string{"BOGUS"}}}); r.ResponseCode != api.InvalidRequest {
		t.Errorf("query with a bad status: %+v", r)
	}
}

// childScheduler is the environment variable that makes the test binary
// run a scheduler (for TestUpdateSurvivesKill9): master URL, data dir and
// the framework credential (principal:secret), separated by spaces.
const childScheduler = "AURORABOX_TEST_CHILD_SCHEDULER"

// runChildScheduler runs a scheduler until killed, printing its URL.
func runChildScheduler() {
	master, rest, _ := strings.Cut(os.Getenv(childScheduler), " ")
	dataDir, cred, _ := strings.Cut(rest, " ")
	principal, secret, _ := strings.Cut(cred, ":")
	self, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := scheduler.New(scheduler.Config{ListenAddr: ln.Addr().String(), MasterURL: master, DataDir: dataDir, ExecutorPath: self, User: "root",
		Overhead: testOverhead, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FrameworkCredential: &scheduler.FrameworkCredential{Principal: principal, Secret: secret}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go s.Run(context.Background())
	fmt.Printf("http://%s\n", ln.Addr())
	s.Serve(context.Background(), ln)
	os.Exit(3)
}

// startChild runs a scheduler in a child process on the env's data dir
// and points the env at it; the returned function kills it with SIGKILL.
func (e *env) startChild() (kill9 func()) {
	e.t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run", "^$")
	cmd.Env = append(os.Environ(), childScheduler+"="+e.cluster.MasterURL+" "+e.dataDir+" "+e.cluster.Principal+":"+e.cluster.Secret)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	killed := false
	kill9 = func() {
		if !killed {
			killed = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	e.t.Cleanup(kill9)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		kill9()
		e.t.Fatalf("child scheduler: %v", err)
	}
	e.url = strings.TrimSpace(line)
	e.eventually("the child scheduler subscribed", func() bool {
		resp, err := http.Get(e.url + "/leaderhealth")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return kill9
}

// An active update survives kill -9 of the scheduler and continues: the
// scheduler runs as a child process, killed with SIGKILL once while the
// update is paused after its first batch, and once right after the
// resume that set the second batch going (its old tasks being killed, the
// new ones not yet placed). The next scheduler finds the update where the
// store had it and finishes it, with no instance updated twice.
func TestUpdateSurvivesKill9(t *testing.T) {
	e := &env{t: t, cluster: mesostest.StartAgent(t), dataDir: t.TempDir()}
	kill9 := e.startChild()
	j := jobConfig("durable", 3, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("durable", "3 RUNNING", allRunning(3))
	strategy := &api.JobUpdateStrategy{VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{GroupSizes: []int{1, 2}, AutopauseAfterBatch: true}}
	key := e.startUpdate(jobConfig("durable", 3, true, 1, "sleep 601"), api.JobUpdateSettings{UpdateStrategy: strategy})
	paused := e.awaitUpdate(key, "ROLL_FORWARD_PAUSED")
	kill9()

	kill9 = e.startChild()
	if d := e.updateDetails(key); describeUpdate(d) != describeUpdate(paused) {
		t.Fatalf("after kill -9 the update is\n%s\nit was\n%s", describeUpdate(d), describeUpdate(paused))
	}
	e.mustOK("resumeJobUpdate", map[string]any{"key": key})
	kill9()

	kill9 = e.startChild()
	defer kill9()
	d := e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ROLLED_BACK", "ERROR", "ABORTED")
	if got := updateStatuses(d); got != "ROLLING_FORWARD,ROLL_FORWARD_PAUSED,ROLLING_FORWARD,ROLLED_FORWARD" {
		t.Fatalf("statuses %s:\n%s", got, describeUpdate(d))
	}
	ev := instanceEvents(d)
	sort.Strings(ev)
	if got := strings.Join(ev, ","); got != "0 INSTANCE_UPDATED,0 INSTANCE_UPDATING,1 INSTANCE_UPDATED,1 INSTANCE_UPDATING,2 INSTANCE_UPDATED,2 INSTANCE_UPDATING" {
		t.Fatalf("instance events %s", got)
	}
	ts := e.await("durable", "3 RUNNING", allRunning(3))
	if got := e.runningCmds("durable"); got[0] != "sleep 601" || got[1] != "sleep 601" || got[2] != "sleep 601" {
		t.Fatalf("the job runs %v", got)
	}
	// Only the three old tasks were killed: the restarted schedulers saw
	// the new tasks as the update's own.
	if len(ts) != 2 || len(ts["KILLED"]) != 3 {
		t.Fatalf("tasks by status %v", summary(ts))
	}
	for _, tk := range ts["KILLED"] {
		if c := cmdOf(t, tk.AssignedTask.Task); c != "sleep 600" {
			t.Errorf("a task of %q was killed", c)
		}
	}
}

// A coordinated update (blockIfNoPulsesAfterMs) waits for its first
// pulse, then rolls while pulses come in time (an hour here).
func TestCoordinatedUpdate(t *testing.T) {
	e := start(t)
	e.mustOK("createJob", map[string]any{"description": jobConfig("coordinated", 2, true, 1, "sleep 600")})
	e.await("coordinated", "2 RUNNING", allRunning(2))
	key := e.startUpdate(jobConfig("coordinated", 2, true, 1, "sleep 601"), api.JobUpdateSettings{UpdateGroupSize: 2, BlockIfNoPulsesAfterMs: 3600_000})
	if d := e.updateDetails(key); d.Update.Summary.State.Status != "ROLL_FORWARD_AWAITING_PULSE" || len(d.InstanceEvents) != 0 {
		t.Fatalf("before the first pulse:\n%s", describeUpdate(d))
	}
	if r := e.mustOK("pulseJobUpdate", map[string]any{"key": key}); r.Result.PulseJobUpdateResult.Status != "OK" {
		t.Fatalf("pulse: %+v", r)
	}
	d := e.awaitUpdate(key, "ROLLED_FORWARD")
	if got := updateStatuses(d); got != "ROLL_FORWARD_AWAITING_PULSE,ROLLING_FORWARD,ROLLED_FORWARD" {
		t.Errorf("statuses %s", got)
	}
	if r := e.mustOK("pulseJobUpdate", map[string]any{"key": key}); r.Result.PulseJobUpdateResult.Status != "FINISHED" {
		t.Errorf("pulse after the end: %+v", r)
	}
}

// BenchmarkRollingUpdate50 is issue 7's benchmark on the in-process
// Mesos: a rolling update of 50 instances of a trivial service in batches
// of 5 with no watch time; it reports each update's wall time (s/update).
func BenchmarkRollingUpdate50(b *testing.B) {
	e := start(b)
	job := func(cmd string) api.JobConfiguration {
		j := jobConfig("bench", 50, true, 1, cmd)
		j.TaskConfig.Resources[0] = api.Resource{NumCpus: ptr(0.05)}
		return j
	}
	e.mustOK("createJob", map[string]any{"description": job("sleep 600")})
	e.await("bench", "50 RUNNING", allRunning(50))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		key := e.startUpdate(job(fmt.Sprintf("sleep %d", 601+i)), api.JobUpdateSettings{UpdateStrategy: batch(5)})
		if d := e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ROLLED_BACK", "ERROR"); d.Update.Summary.State.Status != "ROLLED_FORWARD" {
			b.Fatalf("update:\n%s", describeUpdate(d))
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/update")
}
