package scheduler_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// startSlaUpdates is startSla whose SLA-aware updates check a held kill
// again only when asked (RunUpdatesNow) or on a task change.
func startSlaUpdates(t *testing.T, clk *fakeClock) *apiEnv {
	e := startAPI(t, "host-a", []string{"host-b"}, func(c *scheduler.Config) {
		c.Now, c.OfferHold, c.HostMaintenancePollInterval, c.SlaMinRequiredInstances = clk.Now, time.Hour, time.Hour, 1
		c.SlaAwareKillRetry = time.Hour
	})
	e.eventually("both hosts known", func() bool { return len(e.hostModes("host-a", "host-b")) == 2 })
	e.mustOK("setQuota", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{NumCpus: 10, RAMMb: 10000, DiskMb: 10000}})
	return e
}

// instanceMessages are "N ACTION message" lines of the instance events
// with a message.
func instanceMessages(d api.JobUpdateDetails) []string {
	var out []string
	for _, ev := range d.InstanceEvents {
		if ev.Message != "" {
			out = append(out, fmt.Sprintf("%d %s %s", ev.InstanceID, ev.Action, ev.Message))
		}
	}
	return out
}

// runningTask is the job's RUNNING task of an instance, or nil.
func runningTask(ts map[string][]api.ScheduledTask, instance int) *api.ScheduledTask {
	for _, t := range ts["RUNNING"] {
		if t.AssignedTask.InstanceID == instance {
			return &t
		}
	}
	return nil
}

// TestSlaAwareUpdate updates a 2-instance production job under
// CountSlaPolicy(count 1, 60 s) with batches of 2 and slaAware: no
// instance goes while the other has not run 60 s; then instance 0 goes,
// and instance 1 waits, with its SLA check recorded, until instance 0's
// replacement has run 60 s; the update ends ROLLED_FORWARD.
func TestSlaAwareUpdate(t *testing.T) {
	clk := &fakeClock{}
	e := startSlaUpdates(t, clk)
	j := slaJob("slaupd", api.SlaPolicy{CountSlaPolicy: &api.CountSlaPolicy{Count: 1, DurationSecs: 60}})
	e.mustOK("createJob", map[string]any{"description": j})
	before := e.await("slaupd", "2 RUNNING", running(2))
	old1 := runningTask(before, 1).AssignedTask.TaskID

	j2 := jobConfig("slaupd", 2, true, 1, "sleep 601")
	j2.TaskConfig.Tier, j2.TaskConfig.SlaPolicy = j.TaskConfig.Tier, j.TaskConfig.SlaPolicy
	key := e.startUpdate(j2, api.JobUpdateSettings{UpdateStrategy: batch(2), SlaAware: true})

	// Neither instance has run 60 s: both wait.
	e.eventually("both SLA checks recorded", func() bool { return len(instanceMessages(e.updateDetails(key))) == 2 })
	e.sched.RunUpdatesNow()
	if ts := e.tasks("slaupd"); len(ts["RUNNING"]) != 2 || len(ts["KILLING"])+len(ts["KILLED"]) != 0 {
		t.Fatalf("killed before the SLA allowed it: %v", summary(ts))
	}

	// 61 s later instance 0 goes (instance 1 has run long enough), not 1.
	clk.advance(61 * time.Second)
	e.sched.RunUpdatesNow()
	e.await("slaupd", "instance 0 replaced", func(ts map[string][]api.ScheduledTask) bool {
		r := runningTask(ts, 0)
		return r != nil && cmdOf(t, r.AssignedTask.Task) == "sleep 601"
	})
	e.eventually("instance 0 updated", func() bool {
		return indexOf(instanceEvents(e.updateDetails(key)), "0 INSTANCE_UPDATED") >= 0
	})
	e.sched.RunUpdatesNow()
	ts := e.tasks("slaupd")
	if r := runningTask(ts, 1); r == nil || r.AssignedTask.TaskID != old1 {
		t.Fatalf("instance 1 did not wait for instance 0's replacement to run 60 s: %v", summary(ts))
	}
	d := e.updateDetails(key)
	if d.Update.Summary.State.Status != "ROLLING_FORWARD" {
		t.Fatalf("update:\n%s", describeUpdate(d))
	}
	want := []string{
		"0 INSTANCE_UPDATING Checking SLA before continuing.",
		"1 INSTANCE_UPDATING Checking SLA before continuing.",
		"0 INSTANCE_UPDATING SLA check passed, continuing.",
	}
	if got := instanceMessages(d); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SLA instance events %q, want %q", got, want)
	}

	// Once it has, instance 1 goes and the update ends.
	clk.advance(61 * time.Second)
	e.sched.RunUpdatesNow()
	d = e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ROLLED_BACK", "ERROR")
	if d.Update.Summary.State.Status != "ROLLED_FORWARD" {
		t.Fatalf("update:\n%s", describeUpdate(d))
	}
	if got := instanceMessages(d); len(got) != 4 || got[3] != "1 INSTANCE_UPDATING SLA check passed, continuing." {
		t.Fatalf("SLA instance events %q", got)
	}
	after := e.await("slaupd", "2 RUNNING with the new config", running(2))
	for _, tk := range after["RUNNING"] {
		if c := cmdOf(t, tk.AssignedTask.Task); c != "sleep 601" {
			t.Errorf("instance %d runs %q", tk.AssignedTask.InstanceID, c)
		}
	}
}

// TestUpdateNotSlaAware updates the same job without slaAware while its
// SLA policy would let no instance go: both instances of the batch are
// replaced at once, with no SLA check.
func TestUpdateNotSlaAware(t *testing.T) {
	clk := &fakeClock{}
	e := startSlaUpdates(t, clk)
	j := slaJob("plainupd", api.SlaPolicy{CountSlaPolicy: &api.CountSlaPolicy{Count: 1, DurationSecs: 60}})
	e.mustOK("createJob", map[string]any{"description": j})
	e.await("plainupd", "2 RUNNING", running(2))
	j2 := jobConfig("plainupd", 2, true, 1, "sleep 601")
	j2.TaskConfig.Tier, j2.TaskConfig.SlaPolicy = j.TaskConfig.Tier, j.TaskConfig.SlaPolicy
	key := e.startUpdate(j2, api.JobUpdateSettings{UpdateStrategy: batch(2)})
	d := e.awaitUpdate(key, "ROLLED_FORWARD", "FAILED", "ROLLED_BACK", "ERROR")
	if d.Update.Summary.State.Status != "ROLLED_FORWARD" || len(instanceMessages(d)) != 0 {
		t.Fatalf("update:\n%s", describeUpdate(d))
	}
	ts := e.tasks("plainupd")
	if len(ts["KILLED"]) != 2 {
		t.Fatalf("tasks %v", summary(ts))
	}
	// Both old tasks were killed before either replacement ran.
	var killing, firstRunning int64 = 0, -1
	for _, tk := range ts["KILLED"] {
		for _, ev := range tk.TaskEvents {
			if ev.Status == "KILLING" && ev.Timestamp > killing {
				killing = ev.Timestamp
			}
		}
	}
	for _, tk := range ts["RUNNING"] {
		for _, ev := range tk.TaskEvents {
			if ev.Status == "RUNNING" && (firstRunning < 0 || ev.Timestamp < firstRunning) {
				firstRunning = ev.Timestamp
			}
		}
	}
	if killing > firstRunning {
		t.Errorf("an old task was killed (%d) after a replacement ran (%d): %v", killing, firstRunning, summary(ts))
	}
}

// TestSlaAwareUpdateCoordinator updates a job whose CoordinatorSlaPolicy
// lets only instance 0 go: instance 0 is replaced, instance 1 waits.
func TestSlaAwareUpdateCoordinator(t *testing.T) {
	clk := &fakeClock{}
	e := startSlaUpdates(t, clk)
	coord := &coordinator{}
	srv := httptest.NewServer(coord)
	defer srv.Close()
	j := slaJob("coordupd", api.SlaPolicy{CoordinatorSlaPolicy: &api.CoordinatorSlaPolicy{CoordinatorURL: srv.URL + "/sla", StatusKey: "ok"}})
	e.mustOK("createJob", map[string]any{"description": j})
	before := e.await("coordupd", "2 RUNNING", running(2))
	old1 := runningTask(before, 1).AssignedTask.TaskID
	j2 := jobConfig("coordupd", 2, true, 1, "sleep 601")
	j2.TaskConfig.Tier, j2.TaskConfig.SlaPolicy = j.TaskConfig.Tier, j.TaskConfig.SlaPolicy
	key := e.startUpdate(j2, api.JobUpdateSettings{UpdateStrategy: batch(2), SlaAware: true})

	e.eventually("instance 0 updated", func() bool {
		return indexOf(instanceEvents(e.updateDetails(key)), "0 INSTANCE_UPDATED") >= 0
	})
	e.eventually("the coordinator asked about instance 1 again", func() bool {
		n := 0
		for _, a := range coord.requests() {
			if a.query == "devcluster/www-data/prod/coordupd/1" {
				n++
			}
		}
		return n >= 2
	})
	ts := e.tasks("coordupd")
	if r := runningTask(ts, 1); r == nil || r.AssignedTask.TaskID != old1 {
		t.Fatalf("instance 1 killed against its coordinator: %v", summary(ts))
	}
	if d := e.updateDetails(key); d.Update.Summary.State.Status != "ROLLING_FORWARD" {
		t.Fatalf("update:\n%s", describeUpdate(d))
	}
}
