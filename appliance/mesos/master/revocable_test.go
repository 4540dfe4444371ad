package master_test

import (
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// offerCPUs sums an offer's cpus by revocability.
func offerCPUs(o mesos.Offer) (ordinary, revocable float64) {
	for _, r := range o.Resources {
		if r.Name != "cpus" {
			continue
		}
		if r.Revocable != nil {
			revocable += r.GetScalar().GetValue()
		} else {
			ordinary += r.GetScalar().GetValue()
		}
	}
	return ordinary, revocable
}

// TestRevocableOffersOnlyWithCapability: an agent's revocable (oversubscribed)
// resources are offered only to frameworks with the REVOCABLE_RESOURCES
// capability; a framework without it is offered the rest of the agent, and
// a capable framework gets the revocable resources the other one could not
// take. A task launched on revocable cpus shows them in the master's state.
func TestRevocableOffersOnlyWithCapability(t *testing.T) {
	m, srv := startMaster(t, master.Config{})
	sub := agentSubscribe()
	rev := resources.NewCPUs(3).Resource
	rev.Revocable = &mesos.Resource_RevocableInfo{}
	sub.Info.Resources = append(sub.Info.Resources, rev)
	startAgentWith(t, srv.URL, sub)

	plain := subscribe(t, srv.URL, "json", framework("plain"))
	plainOffer := plain.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if ord, r := offerCPUs(plainOffer); ord != 4 || r != 0 {
		t.Errorf("framework without REVOCABLE_RESOURCES offered %g cpus and %g revocable cpus, want 4 and 0", ord, r)
	}

	capable := framework("capable")
	capable.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_REVOCABLE_RESOURCES}}
	c := subscribe(t, srv.URL, "protobuf", capable)
	offer := c.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if ord, r := offerCPUs(offer); ord != 0 || r != 3 {
		t.Errorf("framework with REVOCABLE_RESOURCES offered %g cpus and %g revocable cpus, want 0 and 3", ord, r)
	}

	// The plain framework gives back its offer: the capable one then gets
	// the ordinary resources too, and launches on revocable cpus.
	plain.mustCall(calls.Decline(plainOffer.ID).With(calls.RefuseSeconds(time.Hour)))
	second := c.next(scheduler.Event_OFFERS).Offers.Offers[0]
	task := commandTask("rev", &second, 1, 64)
	task.Resources[0].Revocable = &mesos.Resource_RevocableInfo{}
	c.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID, second.ID)))
	if st := c.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("revocable task: %s %s", st.GetState(), st.GetMessage())
	}
	state := m.State()
	var found bool
	for _, fw := range state["frameworks"].([]map[string]any) {
		for _, tk := range fw["tasks"].([]map[string]any) {
			if tk["id"] == "rev" {
				found = true
				if got := tk["revocable_resources"].(map[string]any)["cpus"]; got != 1.0 {
					t.Errorf("task's revocable cpus in state = %v, want 1", got)
				}
			}
		}
	}
	if !found {
		t.Error("task rev not in the master's state")
	}
	slave := state["slaves"].([]map[string]any)[0]
	if got := slave["revocable_resources"].(map[string]any)["cpus"]; got != 3.0 {
		t.Errorf("agent's revocable cpus = %v, want 3", got)
	}
	if got := slave["resources"].(map[string]any)["cpus"]; got != 4.0 {
		t.Errorf("agent's (non-revocable) cpus = %v, want 4", got)
	}
}
