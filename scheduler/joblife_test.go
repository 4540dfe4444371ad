package scheduler_test

import (
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// jobsNamed lists getJobs for www-data, by name.
func (e *env) jobsNamed() map[string]api.JobConfiguration {
	e.t.Helper()
	out := map[string]api.JobConfiguration{}
	for _, j := range e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}).Result.GetJobsResult.Configs {
		out[j.Key.Name] = j
	}
	return out
}

// summariesNamed lists getJobSummary for www-data, by name.
func (e *env) summariesNamed() map[string]api.JobSummary {
	e.t.Helper()
	out := map[string]api.JobSummary{}
	for _, s := range e.mustOK("getJobSummary", map[string]any{"role": "www-data"}).Result.JobSummaryResult.Summaries {
		out[s.Job.Key.Name] = s
	}
	return out
}

// A job exists while it has an active task (or is a cron job), as in
// Aurora 0.11: killing every instance by number (as the client does) or
// having every batch instance FINISHED ends it. It is then no longer
// listed by getJobs (getJobSummary still shows it with its history), its
// ended tasks stay queryable, and createJob of its key succeeds with a new
// configuration. The same holds after a restart.
func TestKilledOrFinishedJobCanBeCreatedAgain(t *testing.T) {
	e := start(t)
	e.mustOK("createJob", map[string]any{"description": jobConfig("again", 2, true, 1, "sleep 600")})
	e.await("again", "2 RUNNING", allRunning(2))
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("again", 1, true, 1, "sleep 601")}); r.ResponseCode != api.InvalidRequest ||
		details(r) != "Job www-data/prod/again already exists." {
		t.Fatalf("createJob of a running job: %s %q", r.ResponseCode, details(r))
	}
	if j, ok := e.jobsNamed()["again"]; !ok || j.InstanceCount != 2 || cmdOf(t, j.TaskConfig) != "sleep 600" {
		t.Fatalf("getJobs while running: %+v", e.jobsNamed())
	}
	// killall, as `aurora job killall` sends it: every instance named.
	e.mustOK("killTasks", map[string]any{"job": jobKey("again"), "instances": []int{0, 1}})
	e.await("again", "2 KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 2 && len(ts) == 1 })
	if jobs := e.jobsNamed(); len(jobs) != 0 {
		t.Fatalf("getJobs after killing every instance: %+v", jobs)
	}
	if s, ok := e.summariesNamed()["again"]; !ok || s.Stats.ActiveTaskCount+s.Stats.PendingTaskCount != 0 || s.Job.InstanceCount != 0 {
		t.Fatalf("getJobSummary after killing every instance: %+v", e.summariesNamed())
	}

	// Created again with another configuration: it replaces the old one;
	// the killed tasks stay in the history.
	e.mustOK("createJob", map[string]any{"description": jobConfig("again", 1, true, 1, "sleep 601")})
	ts := e.await("again", "1 RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 1 })
	if len(ts["KILLED"]) != 2 || cmdOf(t, ts["RUNNING"][0].AssignedTask.Task) != "sleep 601" {
		t.Fatalf("tasks after the second createJob: %v", summary(ts))
	}
	if j, ok := e.jobsNamed()["again"]; !ok || j.InstanceCount != 1 || cmdOf(t, j.TaskConfig) != "sleep 601" {
		t.Fatalf("getJobs after the second createJob: %+v", e.jobsNamed())
	}
	if s := e.summariesNamed()["again"]; s.Job.InstanceCount != 1 || cmdOf(t, s.Job.TaskConfig) != "sleep 601" || s.Stats.ActiveTaskCount != 1 || s.Stats.FailedTaskCount != 2 {
		t.Fatalf("getJobSummary after the second createJob: %+v", s)
	}

	// A batch job whose instances all FINISHED.
	e.mustOK("createJob", map[string]any{"description": jobConfig("once", 2, false, 1, "true")})
	e.await("once", "2 FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 2 })
	if _, ok := e.jobsNamed()["once"]; ok {
		t.Fatalf("getJobs lists a finished batch job: %+v", e.jobsNamed())
	}
	if s, ok := e.summariesNamed()["once"]; !ok || s.Stats.FinishedTaskCount != 2 {
		t.Fatalf("getJobSummary of a finished batch job: %+v", e.summariesNamed())
	}
	if r := e.rpc("killTasks", map[string]any{"job": jobKey("once"), "instances": []int{0, 1}}); r.ResponseCode != api.InvalidRequest || details(r) != "No tasks to kill." {
		t.Fatalf("killTasks of a finished job: %s %q", r.ResponseCode, details(r))
	}

	// A restart agrees: nothing stored keeps a dead job.
	e.stop()
	e.startScheduler()
	jobs := e.jobsNamed()
	if len(jobs) != 1 || jobs["again"].InstanceCount != 1 {
		t.Fatalf("getJobs after a restart: %+v", jobs)
	}
	e.mustOK("createJob", map[string]any{"description": jobConfig("once", 1, false, 1, "true")})
	e.await("once", "3 FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 3 })

	// A job whose tasks have all ended may become a cron job, and the
	// other way round once descheduled.
	cj := jobConfig("once", 1, false, 1, "true")
	cj.CronSchedule = "0 0 1 1 *"
	e.mustOK("scheduleCronJob", map[string]any{"description": cj})
	if j := e.jobsNamed()["once"]; j.CronSchedule != cj.CronSchedule {
		t.Fatalf("getJobs after scheduleCronJob over a finished job: %+v", e.jobsNamed())
	}
	if r := e.rpc("createJob", map[string]any{"description": jobConfig("once", 1, false, 1, "true")}); r.ResponseCode != api.InvalidRequest ||
		!strings.Contains(details(r), "already exists") {
		t.Fatalf("createJob over a cron job: %s %q", r.ResponseCode, details(r))
	}
	e.mustOK("descheduleCronJob", map[string]any{"job": jobKey("once")})
	e.mustOK("createJob", map[string]any{"description": jobConfig("once", 1, false, 1, "true")})
}
