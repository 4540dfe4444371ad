package scheduler_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// startSla runs a master with agents host-a and host-b and a scheduler
// reading clk, whose drain loop only runs when asked (a request, a
// restart, or RunSlaDrainNow), and which SLA-checks jobs from one active
// task up, with quota for production jobs.
func startSla(t *testing.T, clk *fakeClock) *apiEnv {
	e := startAPI(t, "host-a", []string{"host-b"}, func(c *scheduler.Config) {
		c.Now, c.OfferHold, c.HostMaintenancePollInterval, c.SlaMinRequiredInstances = clk.Now, time.Hour, time.Hour, 1
	})
	e.eventually("both hosts known", func() bool { return len(e.hostModes("host-a", "host-b")) == 2 })
	e.mustOK("setQuota", map[string]any{"ownerRole": "www-data", "quota": api.ResourceAggregate{NumCpus: 10, RAMMb: 10000, DiskMb: 10000}})
	return e
}

// placeOnHostA runs the job with both of its instances on host-a: host-b
// is drained (it is empty, so DRAINED at once) while they are placed, then
// returned to service.
func (e *apiEnv) placeOnHostA(j api.JobConfiguration) {
	e.t.Helper()
	e.mustOK("drainHosts", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-b"}}})
	e.mustOK("createJob", map[string]any{"description": j})
	ts := e.await(j.Key.Name, "2 RUNNING", running(2))
	if hs := hostsOf(ts["RUNNING"]); hs[0] != "host-a" || hs[1] != "host-a" {
		e.t.Fatalf("tasks on %v, want both on host-a", hs)
	}
	e.mustOK("endMaintenance", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-b"}}})
}

// byHost counts a job's RUNNING tasks per host, and its drained tasks
// (DRAINING or KILLED).
func byHost(ts map[string][]api.ScheduledTask) (running map[string]int, drained int) {
	running = map[string]int{}
	for _, t := range ts["RUNNING"] {
		running[t.AssignedTask.SlaveHost]++
	}
	return running, len(ts["DRAINING"]) + len(ts["KILLED"])
}

func slaJob(name string, policy any) api.JobConfiguration {
	j := jobConfig(name, 2, true, 1, "sleep 600")
	j.TaskConfig.Tier = "preferred" // production: SLA-checked
	j.TaskConfig.SlaPolicy, _ = json.Marshal(policy)
	return j
}

func slaDrain(hosts []string, timeoutSecs int64) map[string]any {
	return map[string]any{
		"hosts":            api.Hosts{HostNames: hosts},
		"defaultSlaPolicy": api.SlaPolicy{PercentageSlaPolicy: &api.PercentageSlaPolicy{Percentage: 95, DurationSecs: 1800}},
		"timeoutSecs":      timeoutSecs,
	}
}

// TestSlaDrainCountPolicy drains host-a under a job's CountSlaPolicy(count
// 1, 60 s): nothing goes while no other instance has run for 60 s, then
// one instance at a time, each once the other has run 60 s, with a
// scheduler restart in the middle (the request is stored), until host-a
// is DRAINED and stays in maintenance.
func TestSlaDrainCountPolicy(t *testing.T) {
	clk := &fakeClock{}
	e := startSla(t, clk)
	e.placeOnHostA(slaJob("counted", api.SlaPolicy{CountSlaPolicy: &api.CountSlaPolicy{Count: 1, DurationSecs: 60}}))

	r := e.mustOK("slaDrainHosts", slaDrain([]string{"host-a", "nowhere"}, 3600))
	if st := r.Result.DrainHostsResult.Statuses; len(st) != 1 || st[0] != (api.HostStatus{Host: "host-a", Mode: "DRAINING"}) {
		t.Fatalf("slaDrainHosts statuses %+v", st)
	}
	if !strings.Contains(details(r), "nowhere") {
		t.Errorf("unknown host not reported: %q", details(r))
	}
	// Neither instance has run for 60 s: none may go.
	e.sched.RunSlaDrainNow()
	if up, drained := byHost(e.tasks("counted")); drained != 0 || up["host-a"] != 2 {
		t.Fatalf("drained before the SLA allowed it: running %v, drained %d", up, drained)
	}
	if v := e.vars(); v["sla_drain_checks"] < 2 || v["sla_drain_requests"] != 1 || v["sla_drained_tasks"] != 0 {
		t.Fatalf("vars: checks %v requests %v drained %v", v["sla_drain_checks"], v["sla_drain_requests"], v["sla_drained_tasks"])
	}

	// 61 s later one may go (the other has run long enough), not both.
	clk.advance(61 * time.Second)
	e.sched.RunSlaDrainNow()
	if _, drained := byHost(e.tasks("counted")); drained != 1 {
		t.Fatalf("%d tasks drained, want 1", drained)
	}
	ts := e.await("counted", "one instance moved to host-b", func(ts map[string][]api.ScheduledTask) bool {
		up, _ := byHost(ts)
		return len(ts["KILLED"]) == 1 && up["host-a"] == 1 && up["host-b"] == 1
	})
	if ev, ok := eventOf(ts["KILLED"][0], "DRAINING"); !ok || ev.Message != "Draining machine for maintenance." {
		t.Errorf("events of the drained task: %+v", ts["KILLED"][0].TaskEvents)
	}

	// The request survives a restart; the moved instance has not run for
	// 60 s yet, so the other stays.
	e.stop()
	e.restart()
	e.eventually("the new scheduler registered", e.sched.Registered)
	if m := e.hostModes("host-a"); m["host-a"] != "DRAINING" {
		t.Fatalf("host-a %q after the restart", m["host-a"])
	}
	e.sched.RunSlaDrainNow()
	if v := e.vars(); v["sla_drain_requests"] != 1 {
		t.Fatalf("%v drain requests after the restart", v["sla_drain_requests"])
	}
	if up, drained := byHost(e.tasks("counted")); drained != 1 || up["host-a"] != 1 {
		t.Fatalf("after the restart: running %v, drained %d", up, drained)
	}

	// Once it has, the last one goes and host-a is DRAINED, in maintenance
	// until it ends.
	clk.advance(61 * time.Second)
	e.sched.RunSlaDrainNow()
	e.await("counted", "both instances on host-b", func(ts map[string][]api.ScheduledTask) bool {
		up, _ := byHost(ts)
		return len(ts["KILLED"]) == 2 && up["host-b"] == 2
	})
	e.eventually("host-a DRAINED", func() bool { return e.hostModes("host-a")["host-a"] == "DRAINED" })
	e.sched.RunSlaDrainNow()
	if v := e.vars(); v["sla_drain_requests"] != 0 || v["sla_drained_tasks"] != 1 || v["sla_forced_drains"] != 0 {
		t.Fatalf("vars after the drain: requests %v drained %v forced %v", v["sla_drain_requests"], v["sla_drained_tasks"], v["sla_forced_drains"])
	}
}

// coordinator is an SLA coordinator that lets instance 0 go and keeps the
// others, recording what it was asked.
type coordinator struct {
	mu    sync.Mutex
	asked []coordinatorRequest
}

type coordinatorRequest struct {
	query string
	body  map[string]any
}

func (c *coordinator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	task := r.URL.Query().Get("task")
	c.mu.Lock()
	c.asked = append(c.asked, coordinatorRequest{query: task, body: body})
	c.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	json.NewEncoder(w).Encode(map[string]bool{"ok": strings.HasSuffix(task, "/0")})
}

func (c *coordinator) requests() []coordinatorRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]coordinatorRequest(nil), c.asked...)
}

// TestSlaDrainCoordinatorAndForce drains host-a under a CoordinatorSlaPolicy
// whose coordinator lets only instance 0 go, then with a zero timeout,
// which forces the other out.
func TestSlaDrainCoordinatorAndForce(t *testing.T) {
	clk := &fakeClock{}
	e := startSla(t, clk)
	coord := &coordinator{}
	srv := httptest.NewServer(coord)
	defer srv.Close()
	e.placeOnHostA(slaJob("coord", api.SlaPolicy{CoordinatorSlaPolicy: &api.CoordinatorSlaPolicy{CoordinatorURL: srv.URL + "/sla", StatusKey: "ok"}}))

	e.mustOK("slaDrainHosts", slaDrain([]string{"host-a"}, 3600))
	e.sched.RunSlaDrainNow()
	ts := e.await("coord", "instance 0 moved to host-b", func(ts map[string][]api.ScheduledTask) bool {
		up, _ := byHost(ts)
		return len(ts["KILLED"]) == 1 && up["host-a"] == 1 && up["host-b"] == 1
	})
	if k := ts["KILLED"][0]; k.AssignedTask.InstanceID != 0 {
		t.Fatalf("drained instance %d, want 0", k.AssignedTask.InstanceID)
	}
	asked := coord.requests()
	var saw0, saw1 bool
	for _, a := range asked {
		switch a.query {
		case "devcluster/www-data/prod/coord/0":
			saw0 = true
		case "devcluster/www-data/prod/coord/1":
			saw1 = true
		default:
			t.Errorf("coordinator asked about %q", a.query)
		}
		tc, _ := a.body["taskConfig"].(map[string]any)
		at, _ := tc["assignedTask"].(map[string]any)
		countdown, _ := a.body["forceMaintenanceCountdownMs"].(string)
		if a.body["task"] != a.query || at["slaveHost"] != "host-a" || countdown == "" {
			t.Errorf("coordinator request body %v", a.body)
		}
	}
	if !saw0 || !saw1 {
		t.Fatalf("coordinator requests %+v", asked)
	}
	if v := e.vars(); v["sla_coordinator_attempts"] < 2 || v["sla_coordinator_success"] < 2 || v["sla_coordinator_errors"] != 0 {
		t.Fatalf("vars: attempts %v success %v errors %v", v["sla_coordinator_attempts"], v["sla_coordinator_success"], v["sla_coordinator_errors"])
	}

	// A new request with a zero timeout forces instance 1 out without
	// asking.
	before := len(coord.requests())
	e.mustOK("slaDrainHosts", slaDrain([]string{"host-a"}, 0))
	e.sched.RunSlaDrainNow()
	e.await("coord", "both instances on host-b", func(ts map[string][]api.ScheduledTask) bool {
		up, _ := byHost(ts)
		return len(ts["KILLED"]) == 2 && up["host-b"] == 2
	})
	e.eventually("host-a DRAINED", func() bool { return e.hostModes("host-a")["host-a"] == "DRAINED" })
	if v := e.vars(); v["sla_forced_drains"] != 1 {
		t.Fatalf("forced drains %v", v["sla_forced_drains"])
	}
	if after := len(coord.requests()); after != before {
		t.Errorf("the coordinator was asked %d more times during a forced drain", after-before)
	}
}

// TestSlaDrainValidation checks slaDrainHosts' arguments.
func TestSlaDrainValidation(t *testing.T) {
	clk := &fakeClock{}
	e := startSla(t, clk)
	for _, c := range []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"no policy", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "timeoutSecs": 10}, "needs defaultSlaPolicy"},
		{"empty policy", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "defaultSlaPolicy": api.SlaPolicy{}}, "exactly one"},
		{"two policies", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "defaultSlaPolicy": api.SlaPolicy{
			CountSlaPolicy: &api.CountSlaPolicy{Count: 1}, PercentageSlaPolicy: &api.PercentageSlaPolicy{Percentage: 50}}}, "exactly one"},
		{"percentage", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "defaultSlaPolicy": api.SlaPolicy{
			PercentageSlaPolicy: &api.PercentageSlaPolicy{Percentage: 150}}}, "percentage must be 0 to 100"},
		{"coordinator", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "defaultSlaPolicy": api.SlaPolicy{
			CoordinatorSlaPolicy: &api.CoordinatorSlaPolicy{CoordinatorURL: "localhost:8080"}}}, "not an http(s) URL"},
		{"timeout", map[string]any{"hosts": api.Hosts{HostNames: []string{"host-a"}}, "defaultSlaPolicy": api.SlaPolicy{
			CountSlaPolicy: &api.CountSlaPolicy{Count: 1}}, "timeoutSecs": -1}, "timeoutSecs must not be negative"},
		{"no hosts", slaDrain(nil, 10), "No hosts given"},
	} {
		r := e.rpc("slaDrainHosts", c.params)
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("%s: %s %q, want INVALID_REQUEST with %q", c.name, r.ResponseCode, details(r), c.want)
		}
	}
	if m := e.hostModes("host-a"); m["host-a"] != "NONE" {
		t.Fatalf("host-a %q after refused requests", m["host-a"])
	}
	// An empty host is DRAINED at once, and its request forgotten.
	r := e.mustOK("slaDrainHosts", slaDrain([]string{"host-b"}, 10))
	if st := r.Result.DrainHostsResult.Statuses; len(st) != 1 || st[0].Mode != "DRAINED" {
		t.Fatalf("statuses %+v", st)
	}
	e.sched.RunSlaDrainNow()
	if v := e.vars(); v["sla_drain_requests"] != 0 {
		t.Fatalf("%v drain requests for a DRAINED host", v["sla_drain_requests"])
	}
}
