package scheduler_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

func running(n int) func(map[string][]api.ScheduledTask) bool {
	return func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == n }
}

func TestAddInstances(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("grow", 2, true, 1, "sleep 600")})
	e.await("grow", "2 RUNNING", running(2))
	r := e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("grow"), InstanceID: 1}, "count": 2})
	if details(r) != "Added instances [2 3]." {
		t.Errorf("details %q", details(r))
	}
	ts := e.await("grow", "4 RUNNING", running(4))
	want := ts["RUNNING"][0].AssignedTask.Task
	for i, tk := range ts["RUNNING"] {
		if tk.AssignedTask.InstanceID != i {
			t.Errorf("instance ids %v", ts["RUNNING"])
		}
		if got := tk.AssignedTask.Task; got.ExecutorConfig != want.ExecutorConfig || got.NumCpus != want.NumCpus || got.Tier != want.Tier {
			t.Errorf("instance %d config %+v, want %+v", i, got, want)
		}
	}
	if r := e.mustOK("getJobs", map[string]any{"ownerRole": "www-data"}); r.Result.GetJobsResult.Configs[0].InstanceCount != 4 {
		t.Errorf("instance count after addInstances: %+v", r.Result.GetJobsResult.Configs)
	}
	// One config for instances 0-3; after killing instance 1, two ranges.
	sum := e.mustOK("getConfigSummary", map[string]any{"job": jobKey("grow")}).Result.ConfigSummaryResult.Summary
	if len(sum.Groups) != 1 || len(sum.Groups[0].Instances) != 1 || sum.Groups[0].Instances[0] != (api.Range{First: 0, Last: 3}) || sum.Key != jobKey("grow") {
		t.Fatalf("config summary %+v", sum)
	}
	e.mustOK("killTasks", map[string]any{"job": jobKey("grow"), "instances": []int{1}})
	e.await("grow", "instance 1 killed", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	sum = e.mustOK("getConfigSummary", map[string]any{"job": jobKey("grow")}).Result.ConfigSummaryResult.Summary
	if rs := sum.Groups[0].Instances; len(rs) != 2 || rs[0] != (api.Range{First: 0, Last: 0}) || rs[1] != (api.Range{First: 2, Last: 3}) {
		t.Fatalf("ranges after killing instance 1: %+v", rs)
	}
	// New ids follow the highest active instance, whichever is cloned.
	e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("grow"), InstanceID: 0}, "count": 1})
	ts = e.await("grow", "4 RUNNING again", running(4))
	if last := ts["RUNNING"][3].AssignedTask.InstanceID; last != 4 {
		t.Fatalf("added instance id %d, want 4", last)
	}

	for _, c := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"no count", map[string]any{"key": api.InstanceKey{JobKey: jobKey("grow")}, "count": 0}, "Instance count must be positive."},
		{"inactive instance", map[string]any{"key": api.InstanceKey{JobKey: jobKey("grow"), InstanceID: 1}, "count": 1}, "No active task found for a given instance ID."},
		{"unknown job", map[string]any{"key": api.InstanceKey{JobKey: jobKey("nope")}, "count": 1}, "No active task found for a given instance ID."},
		{"bad key", map[string]any{"key": api.InstanceKey{JobKey: api.JobKey{Role: "www-data", Name: "grow"}}, "count": 1}, "environment must not be empty"},
		{"over the limit", map[string]any{"key": api.InstanceKey{JobKey: jobKey("grow")}, "count": 3997}, "Instance count must be between 1 and 4000 inclusive."},
	} {
		r := e.rpc("addInstances", c.params)
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("%s: %s %q, want %q", c.name, r.ResponseCode, details(r), c.want)
		}
	}
	if ts := e.tasks("grow"); len(ts["RUNNING"]) != 4 || len(ts) != 2 {
		t.Fatalf("refused addInstances changed tasks: %v", summary(ts))
	}
	if r := e.rpc("getConfigSummary", map[string]any{"job": api.JobKey{Role: "www-data"}}); r.ResponseCode != api.InvalidRequest {
		t.Fatalf("getConfigSummary of a bad key: %+v", r)
	}
}

func TestForceTaskState(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("forced", 1, false, 1, "sleep 600")})
	id := e.await("forced", "RUNNING", running(1))["RUNNING"][0].AssignedTask.TaskID

	r := e.mustOK("forceTaskState", map[string]any{"taskId": id, "status": "KILLING"})
	if !strings.Contains(details(r), "moved from RUNNING to KILLING") {
		t.Errorf("details %q", details(r))
	}
	// The kill is sent: Mesos reports KILLED, and KILLING is not replaced.
	ts := e.await("forced", "KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	if len(ts) != 1 {
		t.Fatalf("tasks %v", summary(ts))
	}
	var forced bool
	for _, ev := range ts["KILLED"][0].TaskEvents {
		forced = forced || ev.Status == "KILLING" && ev.Message == "Transition forced by unknown"
	}
	if !forced {
		t.Errorf("events %+v", ts["KILLED"][0].TaskEvents)
	}

	for _, c := range []struct {
		name   string
		params map[string]any
		code   api.ResponseCode
		want   string
	}{
		{"unknown status", map[string]any{"taskId": id, "status": "SLEEPING"}, api.InvalidRequest, `unknown schedule status "SLEEPING"`},
		{"deleted", map[string]any{"taskId": id, "status": "DELETED"}, api.InvalidRequest, "DELETED is a pseudo-state"},
		{"init", map[string]any{"taskId": id, "status": "INIT"}, api.InvalidRequest, "cannot be forced into INIT"},
		{"unknown task", map[string]any{"taskId": "nope", "status": "LOST"}, api.InvalidRequest, "No task with id nope."},
		{"no task", map[string]any{"status": "LOST"}, api.InvalidRequest, "taskId must not be empty."},
		{"illegal", map[string]any{"taskId": id, "status": "RUNNING"}, api.OK, "does not allow KILLED → RUNNING"},
		{"noop", map[string]any{"taskId": id, "status": "KILLED"}, api.OK, "is already KILLED"},
	} {
		r := e.rpc("forceTaskState", c.params)
		if r.ResponseCode != c.code || !strings.Contains(details(r), c.want) {
			t.Errorf("%s: %s %q, want %s %q", c.name, r.ResponseCode, details(r), c.code, c.want)
		}
	}
	if ts := e.tasks("forced"); len(ts["KILLED"]) != 1 || len(ts) != 1 {
		t.Fatalf("tasks after refused transitions: %v", summary(ts))
	}
}

func TestPruneTasks(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("done", 2, false, 1, "true")})
	e.mustOK("createJob", map[string]any{"description": jobConfig("live", 1, true, 1, "sleep 600")})
	e.await("done", "2 FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 2 })
	e.await("live", "RUNNING", running(1))

	// Naming an active state is refused, as in Aurora (ERROR).
	r := e.rpc("pruneTasks", map[string]any{"query": api.TaskQuery{Role: "www-data", Statuses: []string{"FINISHED", "RUNNING"}}})
	if r.ResponseCode != api.Error || details(r) != "Tasks in non-terminal state cannot be pruned." {
		t.Fatalf("prune of RUNNING: %+v", r)
	}
	if r := e.rpc("pruneTasks", map[string]any{"query": api.TaskQuery{Statuses: []string{"GONE"}}}); r.ResponseCode != api.InvalidRequest {
		t.Fatalf("prune of an unknown status: %+v", r)
	}
	// An active task the query selects is left alone.
	r = e.mustOK("pruneTasks", map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "live"}})
	if details(r) != "Pruned 0 tasks. | 1 active tasks matched and were left alone." {
		t.Fatalf("prune of an active job: %q", details(r))
	}
	// Limit.
	r = e.mustOK("pruneTasks", map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "done", Limit: 1}})
	if details(r) != "Pruned 1 tasks." {
		t.Fatalf("prune with limit: %q", details(r))
	}
	if ts := e.tasks("done"); len(ts["FINISHED"]) != 1 {
		t.Fatalf("after pruning 1: %v", summary(ts))
	}
	// No statuses: every terminal task of the query.
	r = e.mustOK("pruneTasks", map[string]any{"query": api.TaskQuery{Role: "www-data"}})
	if !strings.HasPrefix(details(r), "Pruned 1 tasks.") {
		t.Fatalf("prune all: %q", details(r))
	}
	if ts := e.tasks("done"); len(ts) != 0 {
		t.Fatalf("terminal tasks left: %v", summary(ts))
	}
	if ts := e.tasks("live"); len(ts["RUNNING"]) != 1 || len(ts) != 1 {
		t.Fatalf("running job after pruning: %v", summary(ts))
	}
	// Pruned for good: a restart does not bring them back.
	e.stop()
	e.restart()
	if ts := e.tasks("done"); len(ts) != 0 {
		t.Fatalf("pruned tasks back after a restart: %v", summary(ts))
	}
	e.await("live", "RUNNING after restart", running(1))
}

func TestQuota(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	q := e.mustOK("getQuota", map[string]any{"ownerRole": "www-data"}).Result.GetQuotaResult
	if q.Quota.NumCpus != 0 || q.Quota.RAMMb != 0 || q.ProdSharedConsumption.NumCpus != 0 {
		t.Fatalf("initial quota %+v", q)
	}
	prod := jobConfig("prod", 2, true, 1, "sleep 600")
	prod.TaskConfig.Tier = "preferred"
	if r := e.rpc("createJob", map[string]any{"description": prod}); r.ResponseCode != api.InvalidRequest || !strings.HasPrefix(details(r), "Insufficient resource quota: ") {
		t.Fatalf("production job without quota: %+v", r)
	}
	for _, c := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"negative", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{NumCpus: -1}}, "Negative values in: numCpus -1, ramMb 0, diskMb 0"},
		{"no role", map[string]any{"ownerRole": " ", "quota": api.ResourceAggregate{NumCpus: 1}}, "ownerRole must not be empty."},
		{"no quota", map[string]any{"ownerRole": "www-data"}, "quota must be set."},
	} {
		if r := e.rpc("setQuota", c.params); r.ResponseCode != api.InvalidRequest || details(r) != c.want {
			t.Errorf("setQuota %s: %s %q, want %q", c.name, r.ResponseCode, details(r), c.want)
		}
	}
	// Newer clients send the amounts as resources.
	e.mustOK("setQuota", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{
		Resources: []api.Resource{{NumCpus: ptr(0.3)}, {RAMMb: ptr(int64(48))}, {DiskMb: ptr(int64(48))}}}})
	e.mustOK("createJob", map[string]any{"description": prod})
	nonProd := jobConfig("batch", 1, true, 1, "sleep 600")
	e.mustOK("createJob", map[string]any{"description": nonProd})
	e.await("prod", "2 RUNNING", running(2))
	e.await("batch", "RUNNING", running(1))

	q = e.mustOK("getQuota", map[string]any{"ownerRole": "www-data"}).Result.GetQuotaResult
	if q.Quota.NumCpus != 0.3 || q.Quota.RAMMb != 48 || q.Quota.DiskMb != 48 {
		t.Errorf("quota %+v", q.Quota)
	}
	if c := q.ProdSharedConsumption; c.NumCpus < 0.199 || c.NumCpus > 0.201 || c.RAMMb != 32 || c.DiskMb != 32 {
		t.Errorf("prod consumption %+v", c)
	}
	if c := q.NonProdSharedConsumption; c.NumCpus != 0.1 || c.RAMMb != 16 || c.DiskMb != 16 {
		t.Errorf("non-prod consumption %+v", c)
	}
	if q.ProdDedicatedConsumption.NumCpus != 0 || q.NonProdDedicatedConsumption.NumCpus != 0 {
		t.Errorf("dedicated consumption %+v", q)
	}
	// Room for one more production instance, not two.
	r := e.rpc("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("prod")}, "count": 2})
	if r.ResponseCode != api.InvalidRequest || details(r) != "Insufficient resource quota: CPU quota exceeded by 0.10 core(s); RAM quota exceeded by 16.00 MB; DISK quota exceeded by 16.00 MB" {
		t.Fatalf("addInstances over quota: %+v", r)
	}
	e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("prod")}, "count": 1})
	// Non-production jobs do not count against quota.
	e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("batch")}, "count": 2})
	// Quota below what production tasks use is refused.
	if r := e.rpc("setQuota", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{NumCpus: 0.1, RAMMb: 100, DiskMb: 100}}); r.ResponseCode != api.InvalidRequest ||
		!strings.Contains(details(r), "is less than the current prod reservation") {
		t.Fatalf("setQuota below consumption: %+v", r)
	}
	e.mustOK("setQuota", map[string]any{"ownerRole": "other", "quota": api.ResourceAggregate{NumCpus: 2, RAMMb: 1024, DiskMb: 2048}})
	var quotas map[string]api.ResourceAggregate
	e.getJSON("/quotas", &quotas)
	if len(quotas) != 2 || quotas["other"].RAMMb != 1024 || quotas["www-data"].NumCpus != 0.3 {
		t.Fatalf("/quotas %+v", quotas)
	}
	var one map[string]api.ResourceAggregate
	e.getJSON("/quotas?role=other", &one)
	if len(one) != 1 || one["other"].DiskMb != 2048 {
		t.Fatalf("/quotas?role=other %+v", one)
	}
	e.await("prod", "3 RUNNING", running(3))
	e.await("batch", "3 RUNNING", running(3))
	// Quotas are stored.
	e.stop()
	e.restart()
	q = e.mustOK("getQuota", map[string]any{"ownerRole": "other"}).Result.GetQuotaResult
	if q.Quota.NumCpus != 2 || q.Quota.RAMMb != 1024 || q.Quota.DiskMb != 2048 {
		t.Fatalf("quota after restart %+v", q.Quota)
	}
	if r := e.rpc("getQuota", map[string]any{}); r.ResponseCode != api.InvalidRequest {
		t.Fatalf("getQuota without a role: %+v", r)
	}
	e.await("prod", "3 RUNNING after restart", running(3))
}

func TestTiersRolesAndSnapshot(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	tc := e.mustOK("getTierConfigs", nil).Result.GetTierConfigResult
	if tc.DefaultTierName != "preemptible" || len(tc.Tiers) != 3 {
		t.Fatalf("tiers %+v", tc)
	}
	want := map[string]string{"preferred": "false/false", "preemptible": "true/false", "revocable": "true/true"}
	for _, tier := range tc.Tiers {
		if got := tier.Settings["preemptible"] + "/" + tier.Settings["revocable"]; got != want[tier.Name] {
			t.Errorf("tier %s: %s, want %s", tier.Name, got, want[tier.Name])
		}
	}
	var tiers struct {
		Default string                     `json:"default"`
		Tiers   map[string]map[string]bool `json:"tiers"`
	}
	e.getJSON("/tiers", &tiers)
	if tiers.Default != "preemptible" || !tiers.Tiers["revocable"]["revocable"] || tiers.Tiers["preferred"]["preemptible"] {
		t.Fatalf("/tiers %+v", tiers)
	}

	if r := e.mustOK("getRoleSummary", nil); len(r.Result.RoleSummaryResult.Summaries) != 0 {
		t.Fatalf("roles of an empty scheduler: %+v", r.Result.RoleSummaryResult)
	}
	e.mustOK("createJob", map[string]any{"description": jobConfig("a", 1, false, 1, "true")})
	e.mustOK("createJob", map[string]any{"description": jobConfig("b", 1, false, 1, "true")})
	other := jobConfig("c", 1, false, 1, "true")
	other.Key.Role, other.TaskConfig.Job.Role = "aurora", "aurora"
	e.mustOK("createJob", map[string]any{"description": other})
	sums := e.mustOK("getRoleSummary", nil).Result.RoleSummaryResult.Summaries
	if len(sums) != 2 || sums[0] != (api.RoleSummary{Role: "aurora", JobCount: 1}) || sums[1] != (api.RoleSummary{Role: "www-data", JobCount: 2}) {
		t.Fatalf("role summaries %+v", sums)
	}
	e.await("a", "FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 1 })
	e.await("b", "FINISHED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["FINISHED"]) == 1 })

	r := e.mustOK("snapshot", nil)
	if !strings.Contains(details(r), "always a consistent snapshot") {
		t.Fatalf("snapshot details %q", details(r))
	}
}

func TestOffersEndpoint(t *testing.T) {
	e := startAPI(t, "agent-one", nil, nil)
	e.awaitOffer()
	var offers []struct {
		ID        string `json:"id"`
		AgentID   string `json:"agent_id"`
		Hostname  string `json:"hostname"`
		Resources []struct {
			Name   string   `json:"name"`
			Type   string   `json:"type"`
			Scalar *float64 `json:"scalar"`
			Ranges []struct {
				Begin, End uint64
			} `json:"ranges"`
		} `json:"resources"`
	}
	e.getJSON("/offers", &offers)
	if len(offers) != 1 || offers[0].ID == "" || offers[0].AgentID == "" || offers[0].Hostname != "agent-one" {
		t.Fatalf("offers %+v", offers)
	}
	got := map[string]string{}
	for _, r := range offers[0].Resources {
		switch {
		case r.Scalar != nil:
			got[r.Name] = r.Type + " " + formatFloat(*r.Scalar)
		case len(r.Ranges) > 0:
			got[r.Name] = r.Type + " " + formatFloat(float64(r.Ranges[0].Begin)) + "-" + formatFloat(float64(r.Ranges[0].End))
		}
	}
	if got["cpus"] != "SCALAR 4" || got["mem"] != "SCALAR 4096" || got["disk"] != "SCALAR 4096" || got["ports"] != "RANGES 31000-31100" {
		t.Fatalf("offer resources %v", got)
	}
}

func TestPendingReason(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	// Two instances of 3 cpus on a 4-cpu agent: one waits.
	j := jobConfig("wide", 2, true, 1, "sleep 600")
	j.TaskConfig.Resources[0].NumCpus = ptr(3.0)
	e.mustOK("createJob", map[string]any{"description": j})
	ts := e.await("wide", "1 RUNNING 1 PENDING", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["RUNNING"]) == 1 && len(ts["PENDING"]) == 1
	})
	pending := ts["PENDING"][0].AssignedTask.TaskID
	var reasons []api.PendingReason
	e.eventually("a pending reason", func() bool {
		reasons = e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "wide"}}).Result.GetPendingReasonResult.Reasons
		return len(reasons) == 1 && reasons[0].Reason != ""
	})
	if reasons[0].TaskID != pending || reasons[0].Reason != "Insufficient: CPU" {
		t.Fatalf("reasons %+v", reasons)
	}
	if r := e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "nobody"}}); len(r.Result.GetPendingReasonResult.Reasons) != 0 {
		t.Fatalf("reasons of another role: %+v", r.Result)
	}
	for _, q := range []api.TaskQuery{{Statuses: []string{"PENDING"}}, {SlaveHosts: []string{"x"}}} {
		if r := e.rpc("getPendingReason", map[string]any{"query": q}); r.ResponseCode != api.InvalidRequest {
			t.Errorf("getPendingReason %+v: %+v", q, r)
		}
	}
}

func TestReconciliationRPCs(t *testing.T) {
	e := startAPI(t, "", nil, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("rec", 2, true, 1, "sleep 600")})
	e.await("rec", "2 RUNNING", running(2))
	// Subscribing reconciled once each way (with no tasks yet).
	e.eventually("the subscription's reconciliation", func() bool {
		v := e.vars()
		return v["reconciliation_explicit_runs"] == 1 && v["reconciliation_implicit_runs"] == 1
	})
	base := e.vars()["reconciliation_task_updates"]

	r := e.mustOK("triggerExplicitTaskReconciliation", map[string]any{"settings": map[string]any{"batchSize": 1}})
	if details(r) != "Explicit reconciliation of 2 tasks in 2 batches." {
		t.Errorf("details %q", details(r))
	}
	// Mesos answers for both tasks.
	e.eventually("2 explicit reconciliation answers", func() bool { return e.vars()["reconciliation_task_updates"] == base+2 })
	e.mustOK("triggerExplicitTaskReconciliation", map[string]any{"settings": map[string]any{}})
	e.eventually("2 more answers (default batch)", func() bool { return e.vars()["reconciliation_task_updates"] == base+4 })
	e.mustOK("triggerImplicitTaskReconciliation", nil)
	e.eventually("2 implicit reconciliation answers", func() bool { return e.vars()["reconciliation_task_updates"] == base+6 })
	if v := e.vars(); v["reconciliation_explicit_runs"] != 3 || v["reconciliation_implicit_runs"] != 2 {
		t.Fatalf("runs %v", v)
	}
	for _, bad := range []int{0, -5} {
		r := e.rpc("triggerExplicitTaskReconciliation", map[string]any{"settings": map[string]any{"batchSize": bad}})
		if r.ResponseCode != api.InvalidRequest || details(r) != "Batch size must be greater than zero." {
			t.Errorf("batch size %d: %+v", bad, r)
		}
	}
	// Nothing changed: the tasks are still RUNNING, with no new events.
	if ts := e.tasks("rec"); len(ts["RUNNING"]) != 2 || len(ts) != 1 || len(ts["RUNNING"][0].TaskEvents) != 4 {
		t.Fatalf("tasks after reconciliation: %v", summary(ts))
	}
}

func TestBasicAuth(t *testing.T) {
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.BasicAuth = map[string]string{"aurora": "secret"} })
	job := map[string]any{"description": jobConfig("authed", 1, true, 1, "sleep 600")}
	for _, c := range []struct{ name, user, pass string }{{"no credentials", "", ""}, {"wrong password", "aurora", "nope"}, {"unknown user", "bob", "secret"}} {
		r := e.post("createJob", job, c.user, c.pass)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Basic realm="Aurora"` || r.resp.ResponseCode != api.AuthFailed {
			t.Errorf("createJob with %s: HTTP %d %q %+v", c.name, r.status, r.header.Get("WWW-Authenticate"), r.resp)
		}
	}
	// Every RPC outside ReadOnlyScheduler, Aurora's AuroraSchedulerManager
	// and AuroraAdmin, and unknown ones.
	for _, m := range []string{"createJob", "scheduleCronJob", "descheduleCronJob", "startCronJob", "replaceCronTemplate",
		"restartShards", "killTasks", "addInstances", "startJobUpdate", "pauseJobUpdate", "resumeJobUpdate",
		"abortJobUpdate", "rollbackJobUpdate", "pulseJobUpdate", "setQuota", "forceTaskState", "performBackup",
		"listBackups", "snapshot", "triggerExplicitTaskReconciliation", "triggerImplicitTaskReconciliation",
		"pruneTasks", "startMaintenance", "drainHosts", "maintenanceStatus", "endMaintenance", "slaDrainHosts",
		"noSuchMethod"} {
		if r := e.post(m, map[string]any{}, "", ""); r.status != http.StatusUnauthorized {
			t.Errorf("%s without credentials: HTTP %d", m, r.status)
		}
	}
	if ts := e.tasks("authed"); len(ts) != 0 {
		t.Fatalf("an unauthenticated createJob created tasks: %v", summary(ts))
	}
	// Read-only RPCs stay open (AURORA-1295).
	for _, m := range []string{"getJobs", "getTasksStatus", "getQuota", "getTierConfigs", "getRoleSummary", "getJobSummary", "populateJobConfig"} {
		params := map[string]any{"ownerRole": "www-data", "description": jobConfig("x", 1, true, 1, "true")}
		if r := e.post(m, params, "", ""); r.status != http.StatusOK || r.resp.ResponseCode != api.OK {
			t.Errorf("%s without credentials: HTTP %d %+v", m, r.status, r.resp)
		}
	}
	if r := e.post("createJob", job, "aurora", "secret"); r.status != http.StatusOK || r.resp.ResponseCode != api.OK {
		t.Fatalf("createJob with credentials: HTTP %d %+v", r.status, r.resp)
	}
	id := e.await("authed", "RUNNING", running(1))["RUNNING"][0].AssignedTask.TaskID
	// The audit message names the authenticated user.
	if r := e.post("forceTaskState", map[string]any{"taskId": id, "status": "KILLING"}, "aurora", "secret"); r.resp.ResponseCode != api.OK {
		t.Fatalf("forceTaskState: %+v", r.resp)
	}
	ts := e.await("authed", "KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	if ev := ts["KILLED"][0].TaskEvents; ev[len(ev)-2].Message != "Transition forced by aurora" {
		t.Fatalf("events %+v", ev)
	}
}
