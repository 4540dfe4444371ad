package scheduler_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// maintenanceJSON is /maintenance.
type maintenanceJSON struct {
	Drained   []string            `json:"DRAINED"`
	Scheduled []string            `json:"SCHEDULED"`
	Draining  map[string][]string `json:"DRAINING"`
}

func (e *env) hostModes(hosts ...string) map[string]string {
	e.t.Helper()
	r := e.mustOK("maintenanceStatus", map[string]any{"hosts": api.Hosts{HostNames: hosts}})
	out := map[string]string{}
	for _, st := range r.Result.MaintenanceStatusResult.Statuses {
		out[st.Host] = st.Mode
	}
	return out
}

// TestDrainHostsMovesTasks drains the host of a running task with a second
// agent available: the task goes DRAINING, then KILLED, its replacement
// runs on the other host, and the drained host ends DRAINED and takes no
// new task until its maintenance ends.
func TestDrainHostsMovesTasks(t *testing.T) {
	e := startAPI(t, "host-a", []string{"host-b"}, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("mover", 1, true, 1, "sleep 600")})
	first := e.await("mover", "RUNNING", running(1))["RUNNING"][0]
	from := first.AssignedTask.SlaveHost
	to := map[string]string{"host-a": "host-b", "host-b": "host-a"}[from]
	if to == "" {
		t.Fatalf("task on %q", from)
	}
	if m := e.hostModes("host-a", "host-b"); m["host-a"] != "NONE" || m["host-b"] != "NONE" {
		t.Fatalf("modes before maintenance: %v", m)
	}

	r := e.mustOK("drainHosts", map[string]any{"hosts": api.Hosts{HostNames: []string{from}}})
	if st := r.Result.DrainHostsResult.Statuses; len(st) != 1 || st[0] != (api.HostStatus{Host: from, Mode: "DRAINING"}) {
		t.Fatalf("drainHosts statuses %+v", st)
	}
	ts := e.await("mover", "replacement RUNNING elsewhere", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["KILLED"]) == 1 && len(ts["RUNNING"]) == 1
	})
	old, rep := ts["KILLED"][0], ts["RUNNING"][0]
	var seen []string
	for _, ev := range old.TaskEvents {
		seen = append(seen, ev.Status)
		if ev.Status == "DRAINING" && ev.Message != "Draining machine for maintenance." {
			t.Errorf("DRAINING message %q", ev.Message)
		}
	}
	if strings.Join(seen, ",") != "PENDING,ASSIGNED,STARTING,RUNNING,DRAINING,KILLED" {
		t.Errorf("events of the drained task: %v", seen)
	}
	if rep.AssignedTask.SlaveHost != to || rep.AncestorID != old.AssignedTask.TaskID || rep.AssignedTask.InstanceID != 0 {
		t.Fatalf("replacement %+v on %s, want on %s", rep.AssignedTask, rep.AssignedTask.SlaveHost, to)
	}
	e.eventually(from+" DRAINED", func() bool { return e.hostModes(from)[from] == "DRAINED" })
	var m maintenanceJSON
	e.getJSON("/maintenance", &m)
	if !reflect.DeepEqual(m.Drained, []string{from}) || len(m.Scheduled) != 0 || len(m.Draining) != 0 {
		t.Fatalf("/maintenance %+v", m)
	}
	m = maintenanceJSON{}

	// SCHEDULED hosts still take tasks; the DRAINED one does not.
	r = e.mustOK("startMaintenance", map[string]any{"hosts": api.Hosts{HostNames: []string{to}}})
	if st := r.Result.StartMaintenanceResult.Statuses; len(st) != 1 || st[0].Mode != "SCHEDULED" {
		t.Fatalf("startMaintenance statuses %+v", st)
	}
	e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("mover")}, "count": 2})
	ts = e.await("mover", "3 RUNNING", running(3))
	if hs := hostsOf(ts["RUNNING"]); slices.Contains(hs, from) {
		t.Fatalf("tasks placed on the drained host: %v", hs)
	}
	e.getJSON("/maintenance", &m)
	if !reflect.DeepEqual(m.Drained, []string{from}) || !reflect.DeepEqual(m.Scheduled, []string{to}) {
		t.Fatalf("/maintenance %+v", m)
	}
	m = maintenanceJSON{}

	// Ending maintenance returns the host to service.
	r = e.mustOK("endMaintenance", map[string]any{"hosts": api.Hosts{HostNames: []string{from, to}}})
	if st := r.Result.EndMaintenanceResult.Statuses; len(st) != 2 || st[0].Mode != "NONE" || st[1].Mode != "NONE" {
		t.Fatalf("endMaintenance statuses %+v", st)
	}
	e.getJSON("/maintenance", &m)
	if len(m.Drained)+len(m.Scheduled)+len(m.Draining) != 0 {
		t.Fatalf("/maintenance after endMaintenance %+v", m)
	}
}

// TestDrainSingleAgent drains the only agent: the task goes DRAINING and
// KILLED, and its replacement stays PENDING, vetoed by the matcher, also
// after a scheduler restart (the mode is stored), until maintenance ends.
func TestDrainSingleAgent(t *testing.T) {
	e := startAPI(t, "solo", nil, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("stuck", 1, true, 1, "sleep 600")})
	e.await("stuck", "RUNNING", running(1))

	for _, c := range []struct {
		method string
		hosts  []string
		want   string
	}{
		{"drainHosts", nil, "No hosts given"},
		{"startMaintenance", []string{" ", ""}, "No hosts given"},
		{"maintenanceStatus", []string{}, "No hosts given"},
	} {
		r := e.rpc(c.method, map[string]any{"hosts": api.Hosts{HostNames: c.hosts}})
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(details(r), c.want) {
			t.Errorf("%s %q: %+v", c.method, c.hosts, r)
		}
	}
	// Unknown hosts are ignored, as in Aurora, and named in the details.
	r := e.mustOK("drainHosts", map[string]any{"hosts": api.Hosts{HostNames: []string{"solo", "ghost", "solo"}}})
	if st := r.Result.DrainHostsResult.Statuses; len(st) != 1 || st[0] != (api.HostStatus{Host: "solo", Mode: "DRAINING"}) {
		t.Fatalf("drainHosts statuses %+v", st)
	}
	if !strings.Contains(details(r), "Unknown hosts ignored (never offered and no tasks there): ghost") {
		t.Errorf("details %q", details(r))
	}
	ts := e.await("stuck", "drained and replaced", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["KILLED"]) == 1 && len(ts["PENDING"]) == 1
	})
	pending := ts["PENDING"][0].AssignedTask.TaskID
	vetoed := func() bool {
		r := e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "stuck"}})
		rs := r.Result.GetPendingReasonResult.Reasons
		return len(rs) == 1 && rs[0].TaskID == pending && rs[0].Reason == "Host drained for maintenance"
	}
	e.eventually("the replacement vetoed by maintenance", vetoed)
	if m := e.hostModes("solo", "ghost"); len(m) != 1 || m["solo"] != "DRAINED" {
		t.Fatalf("modes %v", m)
	}
	if v := e.vars(); v["maintenance_hosts_DRAINED"] != 1 {
		t.Errorf("vars %v", v)
	}

	// The mode is stored: after a restart the host is still DRAINED and the
	// replacement still waits.
	e.stop()
	e.restart()
	if m := e.hostModes("solo"); m["solo"] != "DRAINED" {
		t.Fatalf("mode after restart: %v", m)
	}
	e.eventually("the replacement vetoed after the restart", vetoed)
	if ts := e.tasks("stuck"); len(ts["PENDING"]) != 1 || len(ts["RUNNING"]) != 0 {
		t.Fatalf("tasks after restart: %v", summary(ts))
	}
	var m maintenanceJSON
	e.getJSON("/maintenance", &m)
	if !reflect.DeepEqual(m.Drained, []string{"solo"}) {
		t.Fatalf("/maintenance after restart %+v", m)
	}

	// Back in service, the replacement runs there.
	e.mustOK("endMaintenance", map[string]any{"hosts": api.Hosts{HostNames: []string{"solo"}}})
	e.await("stuck", "replacement RUNNING", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["RUNNING"]) == 1 && ts["RUNNING"][0].AssignedTask.TaskID == pending
	})
	if m := e.hostModes("solo"); m["solo"] != "NONE" {
		t.Fatalf("mode after endMaintenance: %v", m)
	}
}

// TestDrainingHostListsItsTasks: while a host drains, /maintenance lists
// its active tasks; a host with no task drains at once.
func TestDrainingHostListsItsTasks(t *testing.T) {
	e := startAPI(t, "busy", []string{"idle"}, nil)
	// The task takes a second to die after its SIGTERM, which keeps its
	// host DRAINING that long.
	e.mustOK("createJob", map[string]any{"description": jobConfig("slow", 1, true, 1, "trap 'sleep 1; exit 0' TERM; sleep 600 & wait")})
	ts := e.await("slow", "RUNNING", running(1))
	host := ts["RUNNING"][0].AssignedTask.SlaveHost
	other := map[string]string{"busy": "idle", "idle": "busy"}[host]
	id := ts["RUNNING"][0].AssignedTask.TaskID

	// The other host has no task: DRAINED at once.
	r := e.mustOK("drainHosts", map[string]any{"hosts": api.Hosts{HostNames: []string{other}}})
	if st := r.Result.DrainHostsResult.Statuses; len(st) != 1 || st[0] != (api.HostStatus{Host: other, Mode: "DRAINED"}) {
		t.Fatalf("drain of an empty host: %+v", st)
	}
	e.mustOK("drainHosts", map[string]any{"hosts": api.Hosts{HostNames: []string{host}}})
	var draining maintenanceJSON
	e.getJSON("/maintenance", &draining)
	if !reflect.DeepEqual(draining.Draining, map[string][]string{host: {id}}) || !reflect.DeepEqual(draining.Drained, []string{other}) {
		t.Fatalf("/maintenance while draining %+v", draining)
	}
	if v := e.vars(); v["maintenance_hosts_DRAINING"] != 1 || v["maintenance_hosts_DRAINED"] != 1 {
		t.Errorf("vars %v", v)
	}
	e.eventually(host+" DRAINED", func() bool { return e.hostModes(host)[host] == "DRAINED" })
	var drained maintenanceJSON
	e.getJSON("/maintenance", &drained)
	if len(drained.Drained) != 2 || len(drained.Draining) != 0 {
		t.Fatalf("/maintenance %+v", drained)
	}
	// Both hosts drained: the replacement waits.
	ts = e.tasks("slow")
	if len(ts["KILLED"]) != 1 || len(ts["PENDING"]) != 1 {
		t.Fatalf("tasks %v", summary(ts))
	}
}

// TestInverseOfferDrainsHost posts a Mesos maintenance window starting now
// for the host of a running task: the master's inverse offer drains it as
// Aurora's drainForInverseOffer does (DRAINING, KILLED, a replacement on
// the other host, none on the host in the window while its unavailability
// is within the threshold), and the scheduler accepts the inverse offer.
func TestInverseOfferDrainsHost(t *testing.T) {
	e := startAPI(t, "host-a", []string{"host-b"}, nil)
	e.mustOK("createJob", map[string]any{"description": jobConfig("inverse", 1, true, 1, "sleep 600")})
	first := e.await("inverse", "RUNNING", running(1))["RUNNING"][0]
	from := first.AssignedTask.SlaveHost
	to := map[string]string{"host-a": "host-b", "host-b": "host-a"}[from]
	if to == "" {
		t.Fatalf("task on %q", from)
	}

	sched := fmt.Sprintf(`{"windows":[{"machine_ids":[{"hostname":%q}],
		"unavailability":{"start":{"nanoseconds":%d},"duration":{"nanoseconds":3600000000000}}}]}`, from, time.Now().UnixNano())
	resp, err := http.Post(e.cluster.MasterURL+"/master/maintenance/schedule", "application/json", strings.NewReader(sched))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST schedule: %s", resp.Status)
	}

	ts := e.await("inverse", "replacement RUNNING elsewhere", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["KILLED"]) == 1 && len(ts["RUNNING"]) == 1
	})
	old, rep := ts["KILLED"][0], ts["RUNNING"][0]
	var seen []string
	for _, ev := range old.TaskEvents {
		seen = append(seen, ev.Status)
	}
	if strings.Join(seen, ",") != "PENDING,ASSIGNED,STARTING,RUNNING,DRAINING,KILLED" {
		t.Errorf("events of the drained task: %v", seen)
	}
	if rep.AssignedTask.SlaveHost != to || rep.AncestorID != old.AssignedTask.TaskID {
		t.Fatalf("replacement %+v on %s, want on %s", rep.AssignedTask, rep.AssignedTask.SlaveHost, to)
	}
	// The host's Aurora maintenance mode is untouched.
	if m := e.hostModes(from); m[from] != "NONE" {
		t.Errorf("mode of %s: %v", from, m)
	}

	// The master shows the framework's answer.
	e.eventually("inverse offer accepted", func() bool {
		resp, err := http.Get(e.cluster.MasterURL + "/master/maintenance/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Draining []struct {
				Statuses []struct {
					Status string `json:"status"`
				} `json:"statuses"`
			} `json:"draining_machines"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return len(st.Draining) == 1 && len(st.Draining[0].Statuses) == 1 && st.Draining[0].Statuses[0].Status == "ACCEPT"
	})

	// More instances stay off the host in the window.
	e.mustOK("addInstances", map[string]any{"key": api.InstanceKey{JobKey: jobKey("inverse")}, "count": 1})
	ts = e.await("inverse", "2 RUNNING", running(2))
	for _, t2 := range ts["RUNNING"] {
		if t2.AssignedTask.SlaveHost != to {
			t.Fatalf("task %s placed on %s, in its maintenance window", t2.AssignedTask.TaskID, t2.AssignedTask.SlaveHost)
		}
	}
}
