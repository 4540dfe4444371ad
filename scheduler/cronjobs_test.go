package scheduler_test

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// fakeClock is the scheduler's clock in the cron and SLA drain tests: the
// real time shifted by an offset the test moves, so that timers the
// scheduler arms stay sensible while schedules and SLA durations are
// crossed at will.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// set moves the clock to t.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = time.Until(t)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// nextMinute is the first whole minute after t.
func nextMinute(t time.Time) time.Time { return t.Truncate(time.Minute).Add(time.Minute) }

// startCron runs a master, an agent and a scheduler reading clk, with
// configure's changes (may be nil). Offers are held long, so that moving
// the clock does not make the scheduler decline them.
func startCron(t *testing.T, clk *fakeClock, configure func(*scheduler.Config)) *apiEnv {
	return startAPI(t, "", nil, func(c *scheduler.Config) {
		c.Now, c.OfferHold = clk.Now, time.Hour
		if configure != nil {
			configure(c)
		}
	})
}

func cronJob(name, schedule, policy, cmd string) api.JobConfiguration {
	j := jobConfig(name, 1, false, 1, cmd)
	j.CronSchedule, j.CronCollisionPolicy = schedule, policy
	return j
}

// cronJSON is /cron.
type cronJSON struct {
	Scheduled map[string]string `json:"scheduled"`
	Timezone  string            `json:"timezone"`
	Jobs      []api.CronJob     `json:"jobs"`
}

func (e *env) cronJobs() cronJSON {
	e.t.Helper()
	var c cronJSON
	e.getJSON("/cron", &c)
	return c
}

func (e *env) jobs() []api.JobConfiguration {
	e.t.Helper()
	return e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}).Result.GetJobsResult.Configs
}

func (e *env) taskCount(name string) int {
	e.t.Helper()
	n := 0
	for _, l := range e.tasks(name) {
		n += len(l)
	}
	return n
}

func eventOf(t api.ScheduledTask, status string) (api.TaskEvent, bool) {
	for _, ev := range t.TaskEvents {
		if ev.Status == status {
			return ev, true
		}
	}
	return api.TaskEvent{}, false
}

// TestCronJobFiresAndKillsExisting schedules a job every minute: it has no
// task until it fires; its run is RUNNING; the next firing kills that run
// (KILL_EXISTING) before the new one is launched; descheduling stops it.
func TestCronJobFiresAndKillsExisting(t *testing.T) {
	clk := &fakeClock{}
	e := startCron(t, clk, nil)
	key := jobKey("tick")
	e.mustOK("scheduleCronJob", map[string]any{"description": cronJob("tick", "* * * * *", "", "sleep 600")})

	jobs := e.jobs()
	if len(jobs) != 1 || jobs[0].Key != key || jobs[0].CronSchedule != "* * * * *" {
		t.Fatalf("getJobs after scheduleCronJob: %+v", jobs)
	}
	if n := e.taskCount("tick"); n != 0 {
		t.Fatalf("%d tasks before the first firing", n)
	}
	slot := nextMinute(clk.Now())
	c := e.cronJobs()
	if c.Scheduled["www-data/prod/tick"] != "* * * * *" || c.Timezone != "GMT" || len(c.Jobs) != 1 ||
		c.Jobs[0].NextRunMs != slot.UnixMilli() || c.Jobs[0].CronCollisionPolicy != "KILL_EXISTING" || c.Jobs[0].LastFiredMs != 0 {
		t.Fatalf("/cron %+v, want the next run at %v", c, slot)
	}
	sums := e.mustOK("getJobSummary", map[string]any{"role": "www-data"}).Result.JobSummaryResult.Summaries
	if len(sums) != 1 || sums[0].NextCronRunMs == nil || *sums[0].NextCronRunMs != slot.UnixMilli() {
		t.Fatalf("getJobSummary %+v", sums)
	}

	// The first firing launches the run.
	clk.set(slot.Add(time.Second))
	e.sched.RunCronNow()
	first := e.await("tick", "the first run RUNNING", running(1))["RUNNING"][0]
	if v := e.vars(); v["cron_job_launches"] != 1 || v["cron_job_triggers"] != 1 || v["cron_job_collisions"] != 0 {
		t.Fatalf("vars after the first firing: launches %v triggers %v collisions %v", v["cron_job_launches"], v["cron_job_triggers"], v["cron_job_collisions"])
	}
	if c := e.cronJobs(); c.Jobs[0].LastFiredMs != slot.UnixMilli() || c.Jobs[0].NextRunMs != slot.Add(time.Minute).UnixMilli() {
		t.Fatalf("/cron after the firing %+v", c.Jobs)
	}

	// The second finds the first run active: it is killed, then the new
	// run launched.
	clk.set(slot.Add(time.Minute + time.Second))
	e.sched.RunCronNow()
	ts := e.await("tick", "the first run KILLED and the second RUNNING", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["KILLED"]) == 1 && len(ts["RUNNING"]) == 1 && ts["RUNNING"][0].AssignedTask.TaskID != first.AssignedTask.TaskID
	})
	killed, second := ts["KILLED"][0], ts["RUNNING"][0]
	if killed.AssignedTask.TaskID != first.AssignedTask.TaskID {
		t.Fatalf("killed %s, want the first run's %s", killed.AssignedTask.TaskID, first.AssignedTask.TaskID)
	}
	kev, ok := eventOf(killed, "KILLING")
	if !ok || kev.Message != "Killed by cronScheduler" {
		t.Errorf("KILLING event of the first run: %+v", killed.TaskEvents)
	}
	end, _ := eventOf(killed, "KILLED")
	start, _ := eventOf(second, "PENDING")
	if start.Timestamp < end.Timestamp {
		t.Errorf("the second run was launched (%d) before the first was gone (%d)", start.Timestamp, end.Timestamp)
	}
	if second.AncestorID != "" || second.AssignedTask.InstanceID != 0 {
		t.Errorf("second run %+v", second)
	}
	if v := e.vars(); v["cron_job_launches"] != 2 || v["cron_job_collisions"] != 1 {
		t.Fatalf("vars after the collision: launches %v collisions %v", v["cron_job_launches"], v["cron_job_collisions"])
	}

	// Descheduled: the template is gone, the running run stays (and with
	// it the job, no longer a cron job, as in Aurora 0.11), and no later
	// slot fires.
	e.mustOK("descheduleCronJob", map[string]any{"job": key})
	if jobs := e.jobs(); len(jobs) != 1 || jobs[0].CronSchedule != "" || jobs[0].InstanceCount != 1 {
		t.Fatalf("getJobs after descheduleCronJob: %+v", jobs)
	}
	if c := e.cronJobs(); len(c.Scheduled)+len(c.Jobs) != 0 {
		t.Fatalf("/cron after descheduleCronJob: %+v", c)
	}
	clk.advance(3 * time.Minute)
	e.sched.RunCronNow()
	if ts := e.tasks("tick"); len(ts["RUNNING"]) != 1 || len(ts["KILLED"]) != 1 || len(ts) != 2 {
		t.Fatalf("tasks after descheduling and a later slot: %v", summary(ts))
	}
	if v := e.vars(); v["cron_job_triggers"] != 2 || v["cron_jobs"] != 0 {
		t.Fatalf("vars after descheduling: triggers %v cron_jobs %v", v["cron_job_triggers"], v["cron_jobs"])
	}
	r := e.mustOK("descheduleCronJob", map[string]any{"job": key})
	if details(r) != "Job www-data/prod/tick is not scheduled with cron" {
		t.Fatalf("descheduling again: %+v", r)
	}
}

// TestCronCancelNewAndStartNow starts a CANCEL_NEW job by hand, skips
// firings while its run is active, keeps the template when the run is
// killed, and runs a replaced template to completion.
func TestCronCancelNewAndStartNow(t *testing.T) {
	clk := &fakeClock{}
	e := startCron(t, clk, nil)
	key := jobKey("once")
	e.mustOK("scheduleCronJob", map[string]any{"description": cronJob("once", "*/5 * * * *", "CANCEL_NEW", "sleep 600")})
	e.mustOK("startCronJob", map[string]any{"job": key})
	first := e.await("once", "the started run RUNNING", running(1))["RUNNING"][0]

	// A scheduled firing and another start are both cancelled.
	clk.set(clk.Now().Truncate(5 * time.Minute).Add(5*time.Minute + time.Second))
	e.sched.RunCronNow()
	e.mustOK("startCronJob", map[string]any{"job": key})
	if ts := e.tasks("once"); len(ts) != 1 || len(ts["RUNNING"]) != 1 || ts["RUNNING"][0].AssignedTask.TaskID != first.AssignedTask.TaskID {
		t.Fatalf("tasks after cancelled firings: %v", summary(ts))
	}
	if v := e.vars(); v["cron_job_collisions"] != 2 || v["cron_job_launches"] != 1 || v["cron_job_triggers"] != 3 {
		t.Fatalf("vars: collisions %v launches %v triggers %v", v["cron_job_collisions"], v["cron_job_launches"], v["cron_job_triggers"])
	}

	// Killing the run leaves the cron job scheduled.
	e.mustOK("killTasks", map[string]any{"job": key})
	e.await("once", "the run KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	if jobs := e.jobs(); len(jobs) != 1 || jobs[0].CronSchedule != "*/5 * * * *" {
		t.Fatalf("getJobs after killing the run: %+v", jobs)
	}

	// A replaced template is what the next firing runs.
	next := cronJob("once", "*/5 * * * *", "CANCEL_NEW", "echo done")
	next.InstanceCount = 2
	e.mustOK("replaceCronTemplate", map[string]any{"config": next})
	if jobs := e.jobs(); len(jobs) != 1 || jobs[0].InstanceCount != 2 {
		t.Fatalf("getJobs after replaceCronTemplate: %+v", jobs)
	}
	clk.advance(5 * time.Minute)
	e.sched.RunCronNow()
	ts := e.await("once", "the new run FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 2 })
	for _, tk := range ts["FINISHED"] {
		if !strings.Contains(tk.AssignedTask.Task.ExecutorConfig.Data, "echo done") {
			t.Errorf("finished task ran %s", tk.AssignedTask.Task.ExecutorConfig.Data)
		}
	}
	if v := e.vars(); v["cron_job_launches"] != 2 {
		t.Fatalf("launches %v", v["cron_job_launches"])
	}
}

// TestCronRestartNeitherDoubleFiresNorCatchesUp fires a job, restarts the
// scheduler with its clock behind the fired slot, and again after missing
// slots: the template and its last firing survive, the fired slot does not
// fire again, missed slots are not caught up, and the next one fires once.
func TestCronRestartNeitherDoubleFiresNorCatchesUp(t *testing.T) {
	clk := &fakeClock{}
	e := startCron(t, clk, nil)
	e.mustOK("scheduleCronJob", map[string]any{"description": cronJob("durable", "* * * * *", "", "echo tick")})
	slot := nextMinute(clk.Now())
	clk.set(slot.Add(time.Second))
	e.sched.RunCronNow()
	e.await("durable", "the run FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 1 })

	// A new scheduler whose clock is behind the slot already fired.
	e.stop()
	clk.set(slot.Add(-10 * time.Second))
	e.restart()
	if jobs := e.jobs(); len(jobs) != 1 || jobs[0].CronSchedule != "* * * * *" {
		t.Fatalf("getJobs after the restart: %+v", jobs)
	}
	if c := e.cronJobs(); len(c.Jobs) != 1 || c.Jobs[0].LastFiredMs != slot.UnixMilli() || c.Jobs[0].NextRunMs != slot.Add(time.Minute).UnixMilli() {
		t.Fatalf("/cron after the restart: %+v", c.Jobs)
	}
	clk.set(slot.Add(2 * time.Second))
	e.sched.RunCronNow()
	if n := e.taskCount("durable"); n != 1 {
		t.Fatalf("%d tasks: the fired slot fired again after the restart", n)
	}

	// Down over three slots: none is caught up.
	e.stop()
	clk.set(slot.Add(3*time.Minute + 30*time.Second))
	e.restart()
	e.sched.RunCronNow()
	if n := e.taskCount("durable"); n != 1 {
		t.Fatalf("%d tasks: missed slots were caught up", n)
	}
	clk.set(slot.Add(4*time.Minute + time.Second))
	e.sched.RunCronNow()
	e.sched.RunCronNow()
	e.await("durable", "the next slot's run FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 2 })
	if n := e.taskCount("durable"); n != 2 {
		t.Fatalf("%d tasks after the next slot", n)
	}
	if c := e.cronJobs(); c.Jobs[0].LastFiredMs != slot.Add(4*time.Minute).UnixMilli() {
		t.Fatalf("last fired %d, want %d", c.Jobs[0].LastFiredMs, slot.Add(4*time.Minute).UnixMilli())
	}
}

// TestCronValidation checks what scheduleCronJob, replaceCronTemplate,
// startCronJob, descheduleCronJob and createJob refuse, and the cron
// timezone.
func TestCronValidation(t *testing.T) {
	clk := &fakeClock{}
	e := startCron(t, clk, func(c *scheduler.Config) { c.CronTimezone = "America/New_York" })
	e.mustOK("createJob", map[string]any{"description": jobConfig("plain", 1, true, 1, "sleep 600")})
	prod := cronJob("prod", "* * * * *", "", "true")
	prod.TaskConfig.Tier = "preferred"
	service := cronJob("svc", "* * * * *", "", "true")
	service.TaskConfig.IsService = true
	for _, c := range []struct {
		name, method string
		params       map[string]any
		want         string
	}{
		{"too few fields", "scheduleCronJob", map[string]any{"description": cronJob("bad", "* * * *", "", "true")}, "Invalid cron schedule"},
		{"both day fields", "scheduleCronJob", map[string]any{"description": cronJob("bad", "0 0 1 * MON", "", "true")}, "both restricted"},
		{"shortcut", "scheduleCronJob", map[string]any{"description": cronJob("bad", "@daily", "", "true")}, "not supported"},
		{"no schedule", "scheduleCronJob", map[string]any{"description": jobConfig("bad", 1, false, 1, "true")}, "Job www-data/prod/bad has no cron schedule"},
		{"run overlap", "scheduleCronJob", map[string]any{"description": cronJob("bad", "* * * * *", "RUN_OVERLAP", "true")}, "The RUN_OVERLAP collision policy has been removed (AURORA-38)."},
		{"unknown policy", "scheduleCronJob", map[string]any{"description": cronJob("bad", "* * * * *", "SOMETIMES", "true")}, "unknown cron collision policy"},
		{"service", "scheduleCronJob", map[string]any{"description": service}, "A service task may not be run on a cron schedule"},
		{"no description", "scheduleCronJob", map[string]any{}, "scheduleCronJob needs description"},
		{"over a job", "scheduleCronJob", map[string]any{"description": cronJob("plain", "* * * * *", "", "true")}, "already exists and is not a cron job"},
		{"quota", "scheduleCronJob", map[string]any{"description": prod}, "Insufficient resource quota"},
		{"createJob", "createJob", map[string]any{"description": cronJob("bad", "* * * * *", "", "true")}, "Cron jobs may only be created/updated by calling scheduleCronJob."},
		{"replace unknown", "replaceCronTemplate", map[string]any{"config": cronJob("bad", "* * * * *", "", "true")}, "No cron template found for the given key: www-data/prod/bad"},
		{"start unknown", "startCronJob", map[string]any{"job": jobKey("bad")}, "Job www-data/prod/bad is not scheduled with cron"},
		{"start a job", "startCronJob", map[string]any{"job": jobKey("plain")}, "is not scheduled with cron"},
		{"start without job", "startCronJob", map[string]any{}, "startCronJob needs job"},
	} {
		r := e.rpc(c.method, c.params)
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("%s: %s answered %s %q, want INVALID_REQUEST with %q", c.name, c.method, r.ResponseCode, details(r), c.want)
		}
	}

	// The schedule is read in the configured zone.
	e.mustOK("scheduleCronJob", map[string]any{"description": cronJob("nightly", "30 2 * * *", "CANCEL_NEW", "true")})
	c := e.cronJobs()
	if c.Timezone != "America/New_York" || len(c.Jobs) != 1 {
		t.Fatalf("/cron %+v", c)
	}
	ny, _ := time.LoadLocation("America/New_York")
	next := time.UnixMilli(c.Jobs[0].NextRunMs).In(ny)
	if next.Hour() != 2 || next.Minute() != 30 || !next.After(clk.Now()) || next.Sub(clk.Now()) > 25*time.Hour {
		t.Errorf("next run %v", next)
	}
	if n := e.taskCount("nightly"); n != 0 {
		t.Errorf("%d tasks of a cron job that has not fired", n)
	}
	// A cron job takes no instances and no job updates; createJob of its
	// key is refused.
	if r := e.rpc("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("nightly")}, "count": 1}); r.ResponseCode != api.InvalidRequest ||
		!strings.Contains(details(r), "cron") {
		t.Errorf("addInstances to a cron job: %+v", r)
	}
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("nightly", 1, false, 1, "true")}); r.ResponseCode != api.InvalidRequest ||
		!strings.Contains(details(r), "already exists") {
		t.Errorf("createJob over a cron job: %+v", r)
	}
	jobs := e.jobs()
	if !slices.ContainsFunc(jobs, func(j api.JobConfiguration) bool { return j.Key.Name == "nightly" && j.CronSchedule == "30 2 * * *" }) {
		t.Errorf("getJobs %+v", jobs)
	}

	// A zone that does not exist stops the scheduler from starting.
	if _, err := scheduler.New(scheduler.Config{DataDir: filepath.Join(t.TempDir(), "s"), CronTimezone: "Nowhere/Atlantis"}); err == nil ||
		!strings.Contains(err.Error(), "Nowhere/Atlantis") {
		t.Errorf("New with a bad zone: %v", err)
	}
}

// TestCronRefusedDuringUpdate: scheduleCronJob of a job being updated
// answers JOB_UPDATING_ERROR.
func TestCronRefusedDuringUpdate(t *testing.T) {
	e := start(t)
	e.mustOK("createJob", map[string]any{"description": jobConfig("updating", 1, true, 1, "sleep 600")})
	e.await("updating", "RUNNING", running(1))
	key := e.startUpdate(jobConfig("updating", 1, true, 1, "sleep 601"), api.JobUpdateSettings{UpdateGroupSize: 1, BlockIfNoPulsesAfterMs: 3600_000})
	r := e.rpc("scheduleCronJob", map[string]any{"description": cronJob("updating", "* * * * *", "", "true")})
	if r.ResponseCode != api.JobUpdatingError || !strings.Contains(details(r), key.ID) || !strings.Contains(details(r), "scheduleCronJob") {
		t.Fatalf("scheduleCronJob during an update: %+v", r)
	}
}
