package agent_test

import (
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// TestOversubscribedResources: the agent's fixed revocable estimate
// (--oversubscribed-resources) reaches a framework with REVOCABLE_RESOURCES
// as revocable cpus, besides its ordinary cpus; only scalars are accepted.
func TestOversubscribedResources(t *testing.T) {
	if _, err := agent.ParseOversubscribed("ports:[1-2]"); err == nil || !strings.Contains(err.Error(), "ports") {
		t.Errorf("ParseOversubscribed(ports) = %v, want an error naming ports", err)
	}
	over, err := agent.ParseOversubscribed("cpus:3")
	if err != nil {
		t.Fatal(err)
	}
	c := startMasterAndAgent(t, func(cfg *agent.Config) { cfg.Oversubscribed = over })
	s := subscribe(t, c.masterURL, func(fi *mesos.FrameworkInfo) {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_REVOCABLE_RESOURCES})
	})
	var ordinary, revocable float64
	for _, o := range s.next(scheduler.Event_OFFERS).Offers.Offers {
		for _, r := range o.Resources {
			switch {
			case r.Name != "cpus":
			case r.Revocable != nil:
				revocable += r.GetScalar().GetValue()
			default:
				ordinary += r.GetScalar().GetValue()
			}
		}
	}
	if ordinary != 2 || revocable != 3 {
		t.Errorf("offered %g cpus and %g revocable cpus, want 2 and 3", ordinary, revocable)
	}
}
