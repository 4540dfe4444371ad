package master_test

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
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
