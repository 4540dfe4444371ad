package scheduler_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// TestCreateJobRefusesTaskTooLargeForExecutor: a task whose LAUNCH event
// would not fit in what an executor reads is refused at the API with the
// limit in the message (before, it was accepted and then went LOST and
// was replaced forever); tasks just under the limit reach their executors
// and run, also when more of them go to one agent than one ACCEPT call
// can carry.
func TestCreateJobRefusesTaskTooLargeForExecutor(t *testing.T) {
	// Default reconciliation intervals: start's 300 ms would reconcile
	// (and lose) launches still on their way.
	e := startAPI(t, "", nil, nil)
	big := jobConfig("toobig", 1, true, 1, "sleep 600")
	big.TaskConfig.ExecutorConfig.Data = strings.Repeat("x", limits.ExecutorEventBytes)
	for _, method := range []string{"createJob", "populateJobConfig"} {
		r := e.rpc(method, map[string]any{"description": big})
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), strconv.Itoa(limits.TaskLaunchBytes)) ||
			!strings.Contains(details(r), "executor") {
			t.Fatalf("%s of a task over the executor's limit: %v %q; want INVALID_REQUEST naming the %d-byte limit",
				method, r.ResponseCode, details(r), limits.TaskLaunchBytes)
		}
	}
	r := e.rpc("startJobUpdate", map[string]any{"request": api.JobUpdateRequest{TaskConfig: big.TaskConfig, InstanceCount: 1}})
	if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), strconv.Itoa(limits.TaskLaunchBytes)) {
		t.Fatalf("startJobUpdate of a task over the executor's limit: %v %q", r.ResponseCode, details(r))
	}
	if n := len(e.tasks("toobig")); n != 0 {
		t.Fatalf("the refused job has tasks: %d statuses", n)
	}

	// Metadata travels three times (in the assigned task and as the
	// task's and the executor's labels): a value of a third of the
	// budget, less some room, brings the launch close to the limit.
	// Five of them on one agent are more than one ACCEPT may carry to the
	// master (limits.MesosCallBytes): the scheduler spreads them over
	// several.
	near := jobConfig("nearlimit", 5, true, 1, "sleep 600")
	near.TaskConfig.Metadata = []api.Metadata{{Key: "blob", Value: strings.Repeat("x", (limits.TaskLaunchBytes-32<<10)/3)}}
	e.mustOK("createJob", map[string]any{"description": near})
	// Five executors decoding 4 MiB each take a while under -race on a
	// busy machine: wait longer than await does.
	var ts map[string][]api.ScheduledTask
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if ts = e.tasks("nearlimit"); len(ts["RUNNING"]) == 5 {
			break
		}
		if time.Now().After(deadline) {
			e.dumpExecutorLogs()
			t.Fatalf("nearlimit: timed out waiting for 5 RUNNING; tasks by status: %v", summary(ts))
		}
	}
	for _, tk := range ts["RUNNING"] {
		if tk.AncestorID != "" {
			t.Errorf("instance %d runs as a replacement of %s: its first launch was lost (an ACCEPT too large for the master?)", tk.AssignedTask.InstanceID, tk.AncestorID)
		}
	}
}

// TestTaskThatNeverRunsIsThrottled: a service whose tasks end before they
// ever run (here the executor cannot be started) is not replaced in a
// loop by the dev profile: the first replacement is already THROTTLED.
func TestTaskThatNeverRunsIsThrottled(t *testing.T) {
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.ExecutorPath = "/nonexistent/aurorabox-executor" })
	e.mustOK("createJob", map[string]any{"description": jobConfig("neverruns", 1, true, 1, "sleep 600")})
	ts := e.await("neverruns", "a THROTTLED replacement", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["THROTTLED"]) > 0
	})
	total := 0
	for _, l := range ts {
		total += len(l)
	}
	if total != 2 {
		t.Fatalf("tasks by status when the first replacement is throttled: %v; want the task that never ran and its replacement", summary(ts))
	}
	msg := ts["THROTTLED"][0].TaskEvents[len(ts["THROTTLED"][0].TaskEvents)-1].Message
	// The dev profile's flapping throttle (1 s) and never-ran throttle (1 s)
	// agree here; the message names the flapping penalty.
	if !strings.Contains(msg, "penalized for 1000 ms for flapping") {
		t.Fatalf("THROTTLED event %q does not say why", msg)
	}
}
