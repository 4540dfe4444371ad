package master_test

import (
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// mshFramework is the FrameworkInfo mesos-go v0.0.11's msh subscribes with.
func mshFramework() *mesos.FrameworkInfo {
	return &mesos.FrameworkInfo{User: "www-data", Name: "msh", Roles: []string{"*"},
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
			{Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT},
			{Type: mesos.FrameworkInfo_Capability_REGION_AWARE},
		}}
}

// allocatedTo is res allocated to role, as a MULTI_ROLE framework (msh)
// asks for resources.
func allocatedTo(role string, res ...mesos.Resource) mesos.Resources {
	out := mesos.Resources(res).Clone()
	for i := range out {
		out[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto(role)}
	}
	return out
}

// TestMultiRoleOffersCarryAllocationInfo: a MULTI_ROLE framework's offers
// are allocated to its role, so that what msh wants (cpus and mem
// allocated to "*", matched with mesos-go's Resource.Contains) is in them
// and its task launches; a framework without the capability (Aurora) sees
// no allocation_info, as Mesos offers; a task allocated to another role
// than the offer's is refused. msh declined every offer before, as
// "wanted resources {cpus:0.01;mem:64} not found in {cpus:2;mem:...}".
func TestMultiRoleOffersCarryAllocationInfo(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			_, srv := startMaster(t, master.Config{})
			startAgent(t, srv.URL)

			aurora := subscribe(t, srv.URL, media, framework("Aurora"))
			offer := aurora.next(scheduler.Event_OFFERS).Offers.Offers[0]
			if offer.AllocationInfo != nil {
				t.Fatalf("offer to a framework without MULTI_ROLE has allocation_info %v", offer.AllocationInfo)
			}
			for _, r := range offer.Resources {
				if r.AllocationInfo != nil {
					t.Fatalf("resource offered to a framework without MULTI_ROLE has allocation_info: %v", r)
				}
			}
			aurora.cancel()

			s := subscribe(t, srv.URL, media, mshFramework())
			offer = s.next(scheduler.Event_OFFERS).Offers.Offers[0]
			if offer.GetAllocationInfo().GetRole() != "*" {
				t.Fatalf("offer's allocation_info %v, want role *", offer.AllocationInfo)
			}
			wants := allocatedTo("*", resources.NewCPUs(0.01).Resource, resources.NewMemory(64).Resource)
			for _, w := range wants {
				found := false
				for _, r := range offer.Resources {
					found = found || r.Contains(w)
				}
				if !found {
					t.Fatalf("offer %v does not contain %v", mesos.Resources(offer.Resources), w)
				}
			}

			other := commandTask("other-role", &offer, 0.01, 64)
			other.Resources = allocatedTo("web", other.Resources...)
			ok := commandTask("msh", &offer, 0.01, 64)
			ok.Resources = wants
			s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(other), calls.OpLaunch(ok)}.WithOffers(offer.ID)))
			got := map[string]mesos.TaskStatus{}
			for len(got) < 2 {
				st := s.next(scheduler.Event_UPDATE).Update.Status
				got[st.TaskID.Value] = st
			}
			if st := got["other-role"]; st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), `allocated to role "web", the offer to "*"`) {
				t.Fatalf("task of another role: %v", st)
			}
			if st := got["msh"]; st.GetState() != mesos.TASK_RUNNING {
				t.Fatalf("msh's task: %v", st)
			}
		})
	}
}
