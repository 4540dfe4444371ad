package master_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMaintenance drives Mesos' maintenance endpoints: a schedule puts the
// window into the agent's offers, DOWN rescinds them and kills the
// machine's tasks, UP brings offers back.
func TestMaintenance(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL) // hostname agent1.local, pid slave(1)@127.0.0.1:5051
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if offer.Unavailability != nil {
		t.Fatalf("offer before any schedule has unavailability %v", offer.Unavailability)
	}
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-m", &offer, 1, 64))}.WithOffers(offer.ID)).With(calls.RefuseSeconds(0)))
	s.ack(s.next(scheduler.Event_UPDATE).Update.Status)

	for _, bad := range []struct{ body, want string }{
		{`{"windows":[{"machine_ids":[],"unavailability":{"start":{"nanoseconds":1}}}]}`, "empty"},
		{`{"windows":[{"machine_ids":[{}],"unavailability":{"start":{"nanoseconds":1}}}]}`, "are empty"},
		{`{"windows":[{"machine_ids":[{"hostname":"h","ip":"300.1.1.1"}],"unavailability":{"start":{"nanoseconds":1}}}]}`, "Invalid IP"},
		{`{"windows":[{"machine_ids":[{"hostname":"h"}],"unavailability":{"start":{"nanoseconds":1}}},
		  {"machine_ids":[{"hostname":"H"}],"unavailability":{"start":{"nanoseconds":2}}}]}`, "more than once"},
		{`{"windows":`, "Failed to parse"},
	} {
		if code, body := post(t, srv.URL+"/master/maintenance/schedule", bad.body); code != 400 || !strings.Contains(body, bad.want) {
			t.Errorf("schedule %s: %d %q, want 400 with %q", bad.body, code, body, bad.want)
		}
	}

	start := time.Now().Add(time.Hour).UnixNano()
	sched := `{"windows":[{"machine_ids":[{"hostname":"agent1.local","ip":"127.0.0.1"}],
		"unavailability":{"start":{"nanoseconds":` + jsonInt(start) + `},"duration":{"nanoseconds":3600000000000}}}]}`
	if code, body := post(t, srv.URL+"/master/maintenance/schedule", sched); code != 200 {
		t.Fatalf("POST schedule: %d %s", code, body)
	}
	got := getJSON(t, srv.URL+"/master/maintenance/schedule")
	w := got["windows"].([]any)[0].(map[string]any)
	if w["machine_ids"].([]any)[0].(map[string]any)["hostname"] != "agent1.local" {
		t.Fatalf("GET schedule: %v", got)
	}
	// The framework with a task there is asked to move it (see
	// TestInverseOffers); it accepts.
	inv := s.next(scheduler.Event_INVERSE_OFFERS).InverseOffers.InverseOffers
	s.mustCall(calls.AcceptInverseOffers(inv[0].OfferID))
	// The remaining resources are re-offered with the window.
	for {
		o := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
		if u := o.Unavailability; u != nil {
			if u.Start.Nanoseconds != start || u.Duration.GetNanoseconds() != 3600e9 {
				t.Fatalf("unavailability %v", u)
			}
			break
		}
	}
	if st := getJSON(t, srv.URL+"/master/maintenance/status"); st["draining_machines"] == nil {
		t.Fatalf("status while draining: %v", st)
	}

	if code, body := post(t, srv.URL+"/master/machine/down", `[{"hostname":"other"}]`); code != 400 || !strings.Contains(body, "not part of a maintenance schedule") {
		t.Fatalf("down of an unscheduled machine: %d %s", code, body)
	}
	if code, body := post(t, srv.URL+"/master/machine/down", `[{"hostname":"agent1.local","ip":"127.0.0.1"}]`); code != 200 {
		t.Fatalf("down: %d %s", code, body)
	}
	s.next(scheduler.Event_RESCIND)
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-m" || st.GetState().String() != "TASK_KILLED" {
		t.Fatalf("task on a DOWN machine: %v", st)
	}
	if st := getJSON(t, srv.URL+"/master/maintenance/status"); st["down_machines"] == nil {
		t.Fatalf("status while down: %v", st)
	}
	if code, body := post(t, srv.URL+"/master/maintenance/schedule", `{"windows":[]}`); code != 400 || !strings.Contains(body, "deactivated") {
		t.Fatalf("removing a DOWN machine from the schedule: %d %s", code, body)
	}

	if code, body := post(t, srv.URL+"/master/machine/up", `[{"hostname":"agent1.local","ip":"127.0.0.1"}]`); code != 200 {
		t.Fatalf("up: %d %s", code, body)
	}
	for {
		o := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
		if o.Unavailability == nil {
			break
		}
	}
	if got := getJSON(t, srv.URL+"/master/maintenance/schedule"); len(got["windows"].([]any)) != 0 {
		t.Fatalf("schedule after up: %v", got)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestInverseOffers: a framework with a task on a machine in a maintenance
// window gets an INVERSE_OFFERS event with the window, when the schedule is
// posted and again when it re-subscribes; its answer shows in
// /maintenance/status, and removing the window rescinds the inverse offer.
func TestInverseOffers(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	idle := subscribe(t, srv.URL, "protobuf", framework("Idle"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-i", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.ack(s.next(scheduler.Event_UPDATE).Update.Status)

	start := time.Now().Add(time.Minute).UnixNano()
	sched := `{"windows":[{"machine_ids":[{"hostname":"agent1.local","ip":"127.0.0.1"}],
		"unavailability":{"start":{"nanoseconds":` + jsonInt(start) + `},"duration":{"nanoseconds":3600000000000}}}]}`
	if code, body := post(t, srv.URL+"/master/maintenance/schedule", sched); code != 200 {
		t.Fatalf("POST schedule: %d %s", code, body)
	}
	inv := s.next(scheduler.Event_INVERSE_OFFERS).InverseOffers.InverseOffers
	if len(inv) != 1 || inv[0].FrameworkID.Value != s.fwID || inv[0].AgentID.GetValue() != offer.AgentID.Value ||
		inv[0].Unavailability.Start.Nanoseconds != start || inv[0].Unavailability.Duration.GetNanoseconds() != 3600e9 {
		t.Fatalf("inverse offers %v", inv)
	}
	statuses := func() []any {
		st := getJSON(t, srv.URL+"/master/maintenance/status")
		return st["draining_machines"].([]any)[0].(map[string]any)["statuses"].([]any)
	}
	if st := statuses(); len(st) != 1 || st[0].(map[string]any)["status"] != "UNKNOWN" {
		t.Fatalf("statuses before an answer: %v", st)
	}
	if err := s.call(calls.AcceptInverseOffers(inv[0].OfferID)); err != nil {
		t.Fatalf("ACCEPT_INVERSE_OFFERS: %v", err)
	}
	st := statuses()
	if len(st) != 1 || st[0].(map[string]any)["status"] != "ACCEPT" ||
		st[0].(map[string]any)["framework_id"].(map[string]any)["value"] != s.fwID {
		t.Fatalf("statuses after ACCEPT: %v", st)
	}

	// Re-subscription: the framework is asked again, and may decline.
	info := framework("Aurora")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribe(t, srv.URL, "json", info)
	inv = s2.next(scheduler.Event_INVERSE_OFFERS).InverseOffers.InverseOffers
	if len(inv) != 1 || inv[0].Unavailability.Start.Nanoseconds != start {
		t.Fatalf("inverse offers on re-subscription %v", inv)
	}
	s2.mustCall(calls.DeclineInverseOffers(inv[0].OfferID))
	if st := statuses(); len(st) != 1 || st[0].(map[string]any)["status"] != "DECLINE" {
		t.Fatalf("statuses after DECLINE: %v", st)
	}

	// A changed window is offered again; once the window goes away the
	// outstanding inverse offer is rescinded.
	if code, body := post(t, srv.URL+"/master/maintenance/schedule", strings.Replace(sched, "3600000000000", "60000000000", 1)); code != 200 {
		t.Fatalf("POST schedule: %d %s", code, body)
	}
	inv = s2.next(scheduler.Event_INVERSE_OFFERS).InverseOffers.InverseOffers
	if inv[0].Unavailability.Duration.GetNanoseconds() != 60e9 {
		t.Fatalf("inverse offer for the changed window %v", inv)
	}
	if code, body := post(t, srv.URL+"/master/maintenance/schedule", `{"windows":[]}`); code != 200 {
		t.Fatalf("POST empty schedule: %d %s", code, body)
	}
	if got := s2.next(scheduler.Event_RESCIND_INVERSE_OFFER).RescindInverseOffer.InverseOfferID; got != inv[0].OfferID {
		t.Fatalf("rescinded %v, want %v", got, inv[0].OfferID)
	}
	// The framework without tasks there was never asked.
	for _, ev := range idle.queued {
		if ev.Type == scheduler.Event_INVERSE_OFFERS {
			t.Fatalf("idle framework got %v", ev)
		}
	}
	for len(idle.events) > 0 {
		if ev := <-idle.events; ev.Type == scheduler.Event_INVERSE_OFFERS {
			t.Fatalf("idle framework got %v", ev)
		}
	}
}
