package master_test

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// get is curl -s: the body of url, which must answer 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

// jqTrue runs jq -e filter over doc and fails unless it yields true.
func jqTrue(t *testing.T, doc, filter string) {
	t.Helper()
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Skip("jq is not installed")
	}
	cmd := exec.Command(jq, "-e", filter)
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("jq -e '%s': %v %s\ninput: %s", filter, err, out, doc)
	}
}

// TestSlavesAndFrameworksEndpoints: Mesos' /master/slaves and
// /master/frameworks, their ?slave_id= and ?framework_id= filters, and
// /version reporting the API release we implement plus our own build.
func TestSlavesAndFrameworksEndpoints(t *testing.T) {
	_, srv := startMaster(t, master.Config{BuildVersion: "v9.9.9-test"})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	task := commandTask("sleep-1", &offer, 1, 64)
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)))
	s.next(scheduler.Event_UPDATE)

	for _, path := range []string{"/master/slaves", "/slaves"} {
		doc := get(t, srv.URL+path)
		jqTrue(t, doc, `(.slaves | length) == 1 and .recovered_slaves == []`)
		jqTrue(t, doc, `.slaves[0] | .id == "`+agent.id+`" and .hostname == "agent1.local" and .active and .attributes.rack == "r1" and .resources.cpus == 4 and .resources.ports == "[31000-32000]" and .used_resources.cpus == 1 and .version == "`+master.Version+`"`)
	}
	jqTrue(t, get(t, srv.URL+"/master/slaves?slave_id="+agent.id), `(.slaves | length) == 1`)
	jqTrue(t, get(t, srv.URL+"/master/slaves?slave_id=nosuch"), `.slaves == []`)

	for _, path := range []string{"/master/frameworks", "/frameworks"} {
		doc := get(t, srv.URL+path)
		jqTrue(t, doc, `(.frameworks | length) == 1 and .completed_frameworks == [] and .unregistered_frameworks == []`)
		jqTrue(t, doc, `.frameworks[0] | .id == "`+s.fwID+`" and .name == "Aurora" and .active and (.tasks | map(.id)) == ["sleep-1"] and .tasks[0].state == "TASK_RUNNING" and .tasks[0].slave_id == "`+agent.id+`"`)
	}
	jqTrue(t, get(t, srv.URL+"/master/frameworks?framework_id="+s.fwID), `(.frameworks | length) == 1`)
	jqTrue(t, get(t, srv.URL+"/master/frameworks?framework_id=nosuch"), `.frameworks == []`)

	// The version is the Mesos API release we implement, not a Mesos
	// build; our own version is in the build fields (mesos-go's VersionInfo).
	ver := get(t, srv.URL+"/version")
	jqTrue(t, ver, `.version == "1.1.0" and .build_user == "aurorabox" and .git_tag == "v9.9.9-test" and has("git_sha") and has("build_time")`)
	jqTrue(t, get(t, srv.URL+"/master/state"), `.version == "1.1.0" and .git_tag == "v9.9.9-test" and .build_user == "aurorabox"`)
	if page := get(t, srv.URL+"/"); !strings.Contains(page, "aurorabox v9.9.9-test · Mesos API 1.1.0") {
		t.Fatalf("web page lacks the versions:\n%s", page)
	}
}

// TestTasksAndStateSummaryEndpoints: Mesos' /master/tasks (its order,
// offset, limit, framework_id and task_id parameters over running and
// completed tasks) and /master/state-summary (agents and frameworks with
// their task-state counts), with tasks of two frameworks on one agent.
func TestTasksAndStateSummaryEndpoints(t *testing.T) {
	_, srv := startMaster(t, master.Config{DeclineDelay: 10 * time.Millisecond})
	agent := startAgent(t, srv.URL)
	// launch runs task id on the next offer and acknowledges its
	// TASK_RUNNING (upon which the fake agent finishes all but sleeps).
	launch := func(s *sched, id string) {
		t.Helper()
		offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
		s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask(id, &offer, 1, 64))}.WithOffers(offer.ID)))
		st := s.next(scheduler.Event_UPDATE).Update.Status
		if st.TaskID.Value != id || st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("%s: update %v", id, st)
		}
		s.ack(st)
	}
	aurora := subscribe(t, srv.URL, "json", framework("Aurora"))
	launch(aurora, "sleep-1")
	launch(aurora, "done-2")
	if st := aurora.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_FINISHED {
		t.Fatalf("done-2: update %v", st)
	} else {
		aurora.ack(st)
	}
	// Aurora refuses the agent for an hour, so the other framework gets it.
	offer := aurora.next(scheduler.Event_OFFERS).Offers.Offers[0]
	aurora.mustCall(calls.Decline(offer.ID).With(calls.RefuseSeconds(time.Hour)))
	spark := subscribe(t, srv.URL, "json", framework("Spark"))
	launch(spark, "sleep-3")

	ids := func(query string) string {
		t.Helper()
		return get(t, srv.URL+"/master/tasks"+query)
	}
	for _, path := range []string{"/master/tasks", "/tasks"} {
		jqTrue(t, get(t, srv.URL+path), `(.tasks | map(.id)) == ["sleep-3", "done-2", "sleep-1"]`)
	}
	jqTrue(t, ids("?order=asc"), `(.tasks | map(.id)) == ["sleep-1", "done-2", "sleep-3"]`)
	jqTrue(t, ids("?order=asc&offset=1&limit=1"), `(.tasks | map(.id)) == ["done-2"]`)
	jqTrue(t, ids("?offset=5"), `.tasks == []`)
	jqTrue(t, ids("?framework_id="+aurora.fwID), `(.tasks | map(.id)) == ["done-2", "sleep-1"]`)
	jqTrue(t, ids("?task_id=done-2"), `(.tasks | length) == 1 and (.tasks[0] | .state == "TASK_FINISHED" and .framework_id == "`+aurora.fwID+`" and .slave_id == "`+agent.id+`" and (.statuses | map(.state)) == ["TASK_RUNNING", "TASK_FINISHED"] and .resources.cpus == 1 and .discovery.name == "hello.devel.www-data")`)
	jqTrue(t, ids("?task_id=sleep-3&framework_id="+aurora.fwID), `.tasks == []`)
	for _, bad := range []string{"limit=-1", "offset=x", "order=sideways"} {
		resp, err := http.Get(srv.URL + "/master/tasks?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name, _, _ := strings.Cut(bad, "=")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), name) {
			t.Errorf("/master/tasks?%s: %s %s, want a 400 naming %s", bad, resp.Status, b, name)
		}
	}

	for _, path := range []string{"/master/state-summary", "/state-summary"} {
		doc := get(t, srv.URL+path)
		jqTrue(t, doc, `.hostname != "" and (.slaves | length) == 1 and (.frameworks | length) == 2`)
		jqTrue(t, doc, `.slaves[0] | .id == "`+agent.id+`" and .hostname == "agent1.local" and .resources.cpus == 4 and .used_resources.cpus == 2 and .TASK_RUNNING == 2 and .TASK_FINISHED == 1 and .TASK_STAGING == 0 and .TASK_UNREACHABLE == 0 and .framework_ids == (["`+aurora.fwID+`", "`+spark.fwID+`"] | sort)`)
		jqTrue(t, doc, `.frameworks[] | select(.name == "Aurora") | .id == "`+aurora.fwID+`" and .active and .TASK_RUNNING == 1 and .TASK_FINISHED == 1 and .TASK_FAILED == 0 and .slave_ids == ["`+agent.id+`"] and .used_resources.cpus == 1 and (has("tasks") | not)`)
		jqTrue(t, doc, `.frameworks[] | select(.name == "Spark") | .TASK_RUNNING == 1 and .TASK_FINISHED == 0 and .slave_ids == ["`+agent.id+`"]`)
	}
}
