package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// ramWithOverhead is how the refusals name a task's RAM of mb with the
// tests' executor overhead.
func ramWithOverhead(mb int64) string {
	o := testOverhead
	if o == (scheduler.Overhead{}) {
		o = scheduler.DevExecutorOverhead
	}
	return fmt.Sprintf("%d MB RAM", mb+int64(o.MemMB))
}

// TestCreateJobValidation checks every refusal of createJob and
// populateJobConfig, with its message, against a scheduler that has seen
// the agent's offers (cpus 4, mem 4096, disk 4096).
func TestCreateJobValidation(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	e.awaitOffer()
	e.mustOK("createJob", map[string]any{"description": jobConfig("taken", 1, true, 1, "sleep 600")})
	e.await("taken", "RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 1 })

	type mutate func(*api.JobConfiguration)
	cases := []struct {
		name     string
		change   mutate
		populate bool // populateJobConfig refuses it too
		want     string
	}{
		{"empty role", func(j *api.JobConfiguration) { j.Key.Role = ""; j.TaskConfig.Job.Role = "" }, true,
			`job key "/prod/bad": role must not be empty`},
		{"bad name", func(j *api.JobConfiguration) { j.Key.Name = "a b"; j.TaskConfig.Job.Name = "a b" }, true,
			`name "a b" may only contain letters, digits`},
		{"task key mismatch", func(j *api.JobConfiguration) { j.TaskConfig.Job.Name = "other" }, true,
			"Task config job key www-data/prod/other does not match the job key www-data/prod/bad"},
		{"too many cpus", func(j *api.JobConfiguration) { j.TaskConfig.Resources[0].NumCpus = ptr(64.0) }, true,
			"Task resources exceed the largest agent: the task needs 64.01 cpus, " + ramWithOverhead(16) + ", 16 MB disk (executor overhead included) and no agent has as much; largest seen: 127.0.0.1 with 4 cpus, 4096 MB RAM, 4096 MB disk."},
		{"too much ram", func(j *api.JobConfiguration) { j.TaskConfig.Resources[1].RAMMb = ptr(int64(8192)) }, true,
			"Task resources exceed the largest agent: the task needs 0.11 cpus, " + ramWithOverhead(8192)},
		{"too much disk", func(j *api.JobConfiguration) { j.TaskConfig.Resources[2].DiskMb = ptr(int64(5000)) }, true,
			"5000 MB disk (executor overhead included) and no agent has as much"},
		{"unknown tier", func(j *api.JobConfiguration) { j.TaskConfig.Tier = "gold" }, true,
			"Invalid tier 'gold' in TaskConfig (tiers: preferred, preemptible, revocable)."},
		{"no cpu", func(j *api.JobConfiguration) { j.TaskConfig.Resources[0].NumCpus = ptr(0.0) }, true,
			"Task must have a positive amount of CPU and RAM"},
		{"no instances", func(j *api.JobConfiguration) { j.InstanceCount = 0 }, true,
			"Instance count must be positive."},
		{"no executor data", func(j *api.JobConfiguration) { j.TaskConfig.ExecutorConfig.Data = "" }, true,
			"Task has no executor config data."},
		{"cron", func(j *api.JobConfiguration) { j.CronSchedule = "*/5 * * * *"; j.TaskConfig.IsService = false }, false,
			"Cron jobs may only be created/updated by calling scheduleCronJob."},
		{"too many instances", func(j *api.JobConfiguration) { j.InstanceCount = 4001 }, false,
			"Instance count must be between 1 and 4000 inclusive."},
		{"duplicate", func(j *api.JobConfiguration) { *j = jobConfig("taken", 1, true, 1, "true") }, false,
			"Job www-data/prod/taken already exists."},
		{"production without quota", func(j *api.JobConfiguration) { j.TaskConfig.Tier = "preferred"; j.InstanceCount = 2 }, false,
			"Insufficient resource quota: CPU quota exceeded by 0.20 core(s); RAM quota exceeded by 32.00 MB; DISK quota exceeded by 32.00 MB"},
		{"production flag without quota", func(j *api.JobConfiguration) { j.TaskConfig.Production = true }, false,
			"Insufficient resource quota: CPU quota exceeded by 0.10 core(s)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := jobConfig("bad", 1, true, 1, "sleep 600")
			c.change(&j)
			r := e.rpc("createJob", map[string]any{"description": j})
			if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
				t.Fatalf("createJob: %s %q, want INVALID_REQUEST with %q", r.ResponseCode, details(r), c.want)
			}
			r = e.rpc("populateJobConfig", map[string]any{"description": j})
			switch msg := details(r); {
			case c.populate && (r.ResponseCode != api.InvalidRequest || !strings.HasPrefix(msg, "Invalid configuration: ") || !strings.Contains(msg, c.want)):
				t.Fatalf("populateJobConfig: %s %q, want INVALID_REQUEST with \"Invalid configuration: \" and %q", r.ResponseCode, msg, c.want)
			case !c.populate && r.ResponseCode != api.OK:
				t.Fatalf("populateJobConfig of a job createJob alone refuses: %+v", r)
			}
		})
	}
	// Nothing was created by the refused calls.
	if ts := e.tasks("bad"); len(ts) != 0 {
		t.Fatalf("refused jobs left tasks: %v", summary(ts))
	}
	if r := e.mustOK("getJobs", map[string]any{}); len(r.Result.GetJobsResult.Configs) != 1 {
		t.Fatalf("jobs after refusals: %+v", r.Result.GetJobsResult.Configs)
	}
}

// TestPopulateJobConfig checks the populated fields: tier and production
// back-filled from each other (Aurora's ThriftBackfill), owner, scalars.
func TestPopulateJobConfig(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	for _, c := range []struct {
		tier       string
		production bool
		wantTier   string
		wantProd   bool
	}{
		{"", false, "preemptible", false},
		{"", true, "preferred", true},
		{"preferred", false, "preferred", true},
		{"revocable", true, "revocable", false},
	} {
		j := jobConfig("pop", 3, true, 0, "true")
		j.TaskConfig.Tier, j.TaskConfig.Production = c.tier, c.production
		j.TaskConfig.Owner, j.TaskConfig.Job = api.Identity{}, api.JobKey{}
		r := e.mustOK("populateJobConfig", map[string]any{"description": j})
		tc := r.Result.PopulateJobResult.TaskConfig
		if tc.Tier != c.wantTier || tc.Production != c.wantProd {
			t.Errorf("tier %q production %v → tier %q production %v, want %q %v", c.tier, c.production, tc.Tier, tc.Production, c.wantTier, c.wantProd)
		}
		if tc.Job != jobKey("pop") || tc.Owner.User != "www-data" || tc.NumCpus != 0.1 || tc.RAMMb != 16 || tc.DiskMb != 16 || tc.MaxTaskFailures != 1 {
			t.Errorf("populated config %+v", tc)
		}
	}
	if ts := e.tasks("pop"); len(ts) != 0 {
		t.Fatalf("populateJobConfig created tasks: %v", summary(ts))
	}
}

// TestWithoutOffers runs a scheduler that never reaches Mesos: without an
// offer seen, task sizes are not checked, and reconciliation is refused as
// transient.
func TestWithoutOffers(t *testing.T) {
	self, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.New(scheduler.Config{
		ListenAddr: ln.Addr().String(), MasterURL: "http://127.0.0.1:1", DataDir: t.TempDir(), ExecutorPath: self,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	e := &env{t: t, url: "http://" + ln.Addr().String()}

	big := jobConfig("big", 1, true, 1, "true")
	big.TaskConfig.Resources[0].NumCpus = ptr(512.0)
	e.mustOK("createJob", map[string]any{"description": big})
	if ts := e.tasks("big"); len(ts["PENDING"]) != 1 {
		t.Fatalf("tasks %v", summary(ts))
	}
	for _, m := range []string{"triggerExplicitTaskReconciliation", "triggerImplicitTaskReconciliation"} {
		if r := e.rpc(m, map[string]any{"settings": map[string]any{}}); r.ResponseCode != api.ErrorTransient {
			t.Errorf("%s while not registered: %+v", m, r)
		}
	}
	// getPendingReason: no round has run, so no reason yet.
	r := e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "www-data"}})
	if rs := r.Result.GetPendingReasonResult.Reasons; len(rs) != 1 || rs[0].Reason != "" {
		t.Fatalf("reasons %+v", rs)
	}
}

// asRole is j moved to role.
func asRole(j api.JobConfiguration, role string) api.JobConfiguration {
	j.Key.Role, j.TaskConfig.Job.Role = role, role
	j.Owner.User, j.TaskConfig.Owner.User = role, role
	// The executor checks the config's role against the job key.
	var job schema.Job
	if err := json.Unmarshal([]byte(j.TaskConfig.ExecutorConfig.Data), &job); err == nil {
		job.Role = role
		data, _ := json.Marshal(job)
		j.TaskConfig.ExecutorConfig.Data = string(data)
	}
	return j
}

// TestRootTasksRefused: without Config.AllowRootTasks every RPC that adds
// or starts tasks refuses role root with INVALID_REQUEST and nothing is
// stored; with it the same job is accepted.
func TestRootTasksRefused(t *testing.T) {
	allow := false
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.AllowRootTasks = allow })
	e.awaitOffer()
	job := asRole(jobConfig("rooted", 1, true, 1, "sleep 600"), "root")
	cron := asRole(cronJob("rootcron", "*/5 * * * *", "", "sleep 600"), "root")
	key := job.Key
	for _, c := range []struct {
		method string
		params map[string]any
	}{
		{"createJob", map[string]any{"description": job}},
		{"populateJobConfig", map[string]any{"description": job}},
		{"startJobUpdate", updateRequest(job, api.JobUpdateSettings{UpdateGroupSize: 1})},
		{"scheduleCronJob", map[string]any{"description": cron}},
		{"replaceCronTemplate", map[string]any{"config": cron}},
		{"startCronJob", map[string]any{"job": cron.Key}},
		{"addInstances", map[string]any{"key": api.InstanceKey{JobKey: key}, "count": 1}},
		{"restartShards", map[string]any{"job": key, "shardIds": []int{0}}},
	} {
		r := e.rpc(c.method, c.params)
		if want := "Role root would run its tasks as root (user root has uid 0), which this scheduler refuses"; r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), want) || !strings.Contains(details(r), "--allow-root-tasks") {
			t.Errorf("%s for role root: %s %q, want INVALID_REQUEST with %q", c.method, r.ResponseCode, details(r), want)
		}
	}
	r := e.rpc("getJobs", map[string]any{"ownerRole": "root"})
	if r.ResponseCode != api.OK || len(r.Result.GetJobsResult.Configs) != 0 {
		t.Fatalf("jobs of role root after the refusals: %+v", r)
	}
	// Another role is not affected.
	e.mustOK("populateJobConfig", map[string]any{"description": asRole(jobConfig("fine", 1, true, 1, "true"), "nobody")})

	e.stop()
	allow = true
	e.restart()
	e.awaitOffer()
	e.mustOK("populateJobConfig", map[string]any{"description": job})
	e.mustOK("scheduleCronJob", map[string]any{"description": cron})
}

// TestStoredRootTasksStayPending: a root job stored while root tasks were
// allowed does not launch again once they are refused: its next task
// stays PENDING, with the refusal as its pending reason.
func TestStoredRootTasksStayPending(t *testing.T) {
	allow := true
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.AllowRootTasks = allow })
	e.awaitOffer()
	job := asRole(jobConfig("flaps", 1, true, 1, "sleep 1; exit 1"), "root")
	e.mustOK("createJob", map[string]any{"description": job})
	byStatus := func() map[string][]api.ScheduledTask {
		r := e.mustOK("getTasksStatus", map[string]any{"query": api.TaskQuery{Role: "root", Environment: "prod", JobName: "flaps"}})
		out := map[string][]api.ScheduledTask{}
		for _, tk := range r.Result.ScheduleStatusResult.Tasks {
			out[tk.Status] = append(out[tk.Status], tk)
		}
		return out
	}
	e.eventually("the root task running", func() bool { return len(byStatus()["RUNNING"]) == 1 })
	e.stop()
	allow = false
	e.restart()
	e.awaitOffer()
	// The task fails; its replacement must not launch.
	want := "Role root would run its tasks as root"
	var reason string
	e.eventually("the replacement PENDING with the refusal", func() bool {
		r := e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "root", Environment: "prod", JobName: "flaps"}})
		for _, pr := range r.Result.GetPendingReasonResult.Reasons {
			reason = pr.Reason
		}
		return strings.Contains(reason, want)
	})
	ts := byStatus()
	if len(ts["PENDING"]) != 1 || len(ts["ASSIGNED"])+len(ts["STARTING"])+len(ts["RUNNING"]) != 0 {
		t.Fatalf("root tasks after the refusal: %v", ts)
	}
}
