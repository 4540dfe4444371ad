package master_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// offer returns the single offer of s's next OFFERS event.
func (s *sched) offer() mesos.Offer {
	s.t.Helper()
	offers := s.next(scheduler.Event_OFFERS).Offers.Offers
	if len(offers) != 1 {
		s.t.Fatalf("%d offers, want 1: %v", len(offers), offers)
	}
	return offers[0]
}

func cpusOf(o mesos.Offer) float64 {
	c, _ := resources.CPUs(o.Resources...)
	return c
}

// sleepTask is a task the fake agent runs until it is killed.
func sleepTask(id string, o *mesos.Offer, cpus float64) mesos.TaskInfo {
	return commandTask("sleep-"+id, o, cpus, 64)
}

// TestSecondFrameworkGetsOffers: with one agent, what the first framework
// does not use goes to the framework with the lower dominant share, not
// back to the first one (the old round-robin always restarted at the first
// framework, so a second one never got an offer).
func TestSecondFrameworkGetsOffers(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	aurora := subscribe(t, srv.URL, "json", framework("Aurora"))
	whole := aurora.offer()
	msh := subscribe(t, srv.URL, "json", framework("msh"))

	// Aurora runs a 1-cpu task and returns the rest unfiltered: msh (share
	// 0) gets it.
	aurora.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(sleepTask("a", &whole, 1))}.WithOffers(whole.ID)).With(calls.RefuseSeconds(0)))
	rest := msh.offer()
	if c := cpusOf(rest); c != 3 {
		t.Fatalf("msh was offered %v cpus, want the 3 Aurora left", c)
	}
	// msh declines unfiltered: its share (0) is still the lower one.
	msh.mustCall(calls.Decline(rest.ID).With(calls.RefuseSeconds(0)))
	rest = msh.offer()
	// msh runs 2 cpus: now Aurora (1 cpu) is lower and gets the last cpu.
	msh.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(sleepTask("m", &rest, 2))}.WithOffers(rest.ID)).With(calls.RefuseSeconds(0)))
	if c := cpusOf(aurora.offer()); c != 1 {
		t.Fatalf("Aurora was offered %v cpus, want 1", c)
	}
}

// TestFrameworksShareThreeAgents: as three agents register one by one,
// each goes to the framework with the lowest share (ties: chosen fewer
// times, then id), so two frameworks get two and one agents and three get
// one each (the old allocator gave all three to the first framework).
func TestFrameworksShareThreeAgents(t *testing.T) {
	for _, tc := range []struct {
		frameworks []string
		want       []int // the framework each agent goes to
	}{
		{[]string{"f1", "f2"}, []int{0, 1, 0}},
		{[]string{"f1", "f2", "f3"}, []int{0, 1, 2}},
	} {
		t.Run(fmt.Sprint(len(tc.frameworks)), func(t *testing.T) {
			_, srv := startMaster(t, master.Config{})
			var fws []*sched
			for _, name := range tc.frameworks {
				fws = append(fws, subscribe(t, srv.URL, "json", framework(name)))
			}
			agents := map[string]bool{}
			for i, host := range []string{"agent1.local", "agent2.local", "agent3.local"} {
				sub := agentSubscribe()
				sub.Info.Hostname = host
				startAgentWith(t, srv.URL, sub)
				s := fws[tc.want[i]]
				o := s.offer()
				if o.Hostname != host || agents[o.AgentID.Value] {
					t.Fatalf("%s was offered %s (%s), want %s", s.fwID, o.Hostname, o.AgentID.Value, host)
				}
				agents[o.AgentID.Value] = true
			}
		})
	}
}

// TestLowestShareFirst: three frameworks on one agent; the free resources
// go to the framework with the lowest share that has not refused them, in
// turn: f1 holds a task, so f2 and f3 (share 0) come before it, and f1
// gets them once both refused them.
func TestLowestShareFirst(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	f1 := subscribe(t, srv.URL, "json", framework("f1"))
	whole := f1.offer()
	f1.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(sleepTask("1", &whole, 1))}.WithOffers(whole.ID)).With(calls.RefuseSeconds(0)))
	rest := f1.offer() // f1 is the only framework yet
	f2 := subscribe(t, srv.URL, "json", framework("f2"))
	f3 := subscribe(t, srv.URL, "json", framework("f3"))

	f1.mustCall(calls.Decline(rest.ID).With(calls.RefuseSeconds(0)))
	o := f2.offer() // share 0, first by id
	f2.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
	o = f3.offer() // share 0; f2 is filtered
	f3.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
	if c := cpusOf(f1.offer()); c != 3 { // the only one left
		t.Fatalf("f1 was offered %v cpus, want 3", c)
	}
}

// TestDeclineFiltersOnlyThatFramework: refuse_seconds keeps the agent from
// the framework that declined, not from the other one; REVIVE lifts it.
func TestDeclineFiltersOnlyThatFramework(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	f1 := subscribe(t, srv.URL, "json", framework("f1"))
	o := f1.offer()
	f2 := subscribe(t, srv.URL, "json", framework("f2"))
	f1.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
	o = f2.offer()
	// f2 declines unfiltered and gets it again: f1 (also share 0, chosen
	// as often) would be first by id, but it is filtered.
	f2.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	o = f2.offer()
	// After f1's REVIVE, the next unfiltered decline goes to f1 (chosen
	// fewer times than f2).
	f1.mustCall(calls.Revive())
	f2.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	f1.offer()
}

// TestOfferTimeoutRescinds: an offer held past the offer timeout is
// rescinded, and its resources go to the other framework.
func TestOfferTimeoutRescinds(t *testing.T) {
	_, srv := startMaster(t, master.Config{OfferTimeout: 200 * time.Millisecond})
	startAgent(t, srv.URL)
	f1 := subscribe(t, srv.URL, "json", framework("f1"))
	held := f1.offer()
	f2 := subscribe(t, srv.URL, "json", framework("f2"))
	if id := f1.next(scheduler.Event_RESCIND).Rescind.OfferID; id != held.ID {
		t.Fatalf("rescinded %s, want %s", id.Value, held.ID.Value)
	}
	if c := cpusOf(f2.offer()); c != 4 {
		t.Fatalf("f2 was offered %v cpus, want 4", c)
	}
	// Accepting the rescinded offer is too late.
	f1.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(sleepTask("late", &held, 1))}.WithOffers(held.ID)))
	if st := f1.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_DROPPED {
		t.Fatalf("launch on a rescinded offer: %v", st)
	}
}

// TestSuppressRevive: a suppressed framework gets no offers, even the ones
// it would be first for, until REVIVE.
func TestSuppressRevive(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	f1 := subscribe(t, srv.URL, "json", framework("f1"))
	o := f1.offer()
	f2 := subscribe(t, srv.URL, "json", framework("f2"))
	f1.mustCall(calls.Suppress())
	f1.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	o = f2.offer()
	// f1 (chosen once, as f2 now) would be first by id, but is suppressed.
	f2.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	o = f2.offer()
	f1.mustCall(calls.Revive())
	f2.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	f1.offer()
}

// TestRolesEndpoint: /master/roles lists the roles with frameworks or a
// weight, with Mesos' fields.
func TestRolesEndpoint(t *testing.T) {
	_, srv := startMaster(t, master.Config{Weights: map[string]float64{"ops": 2, "idle": 0.5}})
	startAgent(t, srv.URL)
	info := framework("ops-fw")
	info.Role = proto("ops")
	ops := subscribe(t, srv.URL, "json", info)
	o := ops.offer()
	ops.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(sleepTask("r", &o, 1))}.WithOffers(o.ID)).With(calls.RefuseSeconds(time.Hour)))
	ops.next(scheduler.Event_UPDATE)
	for _, path := range []string{"/master/roles", "/roles"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Roles []struct {
				Name       string             `json:"name"`
				Weight     float64            `json:"weight"`
				Frameworks []string           `json:"frameworks"`
				Resources  map[string]any     `json:"resources"`
				Allocated  map[string]float64 `json:"allocated"`
				Offered    map[string]float64 `json:"offered"`
			} `json:"roles"`
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Roles) != 2 || got.Roles[0].Name != "idle" || got.Roles[0].Weight != 0.5 || len(got.Roles[0].Frameworks) != 0 {
			t.Fatalf("%s: %+v", path, got.Roles)
		}
		r := got.Roles[1]
		if r.Name != "ops" || r.Weight != 2 || len(r.Frameworks) != 1 || r.Frameworks[0] != ops.fwID ||
			r.Resources["cpus"] != 1.0 || r.Allocated["cpus"] != 1 || r.Allocated["mem"] != 64 || len(r.Offered) != 0 {
			t.Fatalf("%s: ops %+v", path, r)
		}
	}
}

// TestMultiRoleOffers: a MULTI_ROLE framework (mesos-go's msh) gets its
// offers and their resources with the role they are allocated to, as
// Mesos, and launches tasks whose resources name it; the rest of the
// agent is offered with the launched resources taken out.
func TestMultiRoleOffers(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	info := framework("msh")
	info.Roles = []string{"dev"}
	info.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}
	s := subscribe(t, srv.URL, "json", info)
	o := s.offer()
	if o.GetAllocationInfo().GetRole() != "dev" {
		t.Fatalf("offer allocation info %v", o.AllocationInfo)
	}
	for _, r := range o.Resources {
		if r.GetAllocationInfo().GetRole() != "dev" {
			t.Fatalf("resource %v lacks the role", r)
		}
	}
	task := sleepTask("mr", &o, 1)
	mesos.Resources(task.Resources).Allocate("dev")
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(o.ID)).With(calls.RefuseSeconds(0)))
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("task: %v", st)
	}
	if c := cpusOf(s.offer()); c != 3 {
		t.Fatalf("re-offered %v cpus, want 3", c)
	}
}
