package master_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// TestAgentPingTimeout: an agent that stops answering the master's pings
// while its stream stays open (hung, or partitioned) is taken for
// disconnected after MaxAgentPingTimeouts unanswered pings: its stream is
// closed and, after the removal timeout, its task is TASK_UNREACHABLE to a
// partition-aware framework. An idle agent that keeps answering stays
// connected, and the hung agent, when it comes back, re-registers.
func TestAgentPingTimeout(t *testing.T) {
	_, srv := startMaster(t, master.Config{
		AgentPingTimeout: 50 * time.Millisecond, MaxAgentPingTimeouts: 3, AgentRemovalTimeout: 100 * time.Millisecond,
	})
	healthy := startAgent(t, srv.URL)
	hungSub := agentSubscribe()
	hungSub.Info.Hostname = "agent2.local"
	hung := startAgentWith(t, srv.URL, hungSub)

	aware := framework("aware")
	aware.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}
	s := subscribe(t, srv.URL, "json", aware)
	offers := map[string]mesos.Offer{}
	for len(offers) < 2 {
		for _, o := range s.next(scheduler.Event_OFFERS).Offers.Offers {
			offers[o.AgentID.Value] = o
		}
	}
	launched := map[string]mesos.TaskInfo{}
	for id, a := range map[string]*fakeAgent{"sleep-healthy": healthy, "sleep-hung": hung} {
		offer := offers[a.id]
		launched[id] = commandTask(id, &offer, 1, 64)
		s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(launched[id])}.WithOffers(offer.ID)))
		st := s.next(scheduler.Event_UPDATE).Update.Status
		if st.TaskID.Value != id || st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("%s: %s %s", id, st.TaskID.Value, st.GetState())
		}
		s.ack(st)
	}

	hung.mute.Store(true)
	select {
	case <-hung.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the master kept the stream of an agent that stopped answering pings")
	}
	st := s.next(scheduler.Event_UPDATE).Update.Status
	if st.TaskID.Value != "sleep-hung" || st.GetState() != mesos.TASK_UNREACHABLE || st.GetReason() != mesos.REASON_AGENT_REMOVED ||
		st.GetSource() != mesos.SOURCE_MASTER || !strings.Contains(st.GetMessage(), "agent2.local is unreachable") {
		t.Fatalf("after the pings timed out: %s %s %s %q", st.TaskID.Value, st.GetState(), st.GetReason(), st.GetMessage())
	}
	if f := s.next(scheduler.Event_FAILURE).Failure; f.GetAgentID().GetValue() != hung.id {
		t.Errorf("failure %v; want agent %s", f, hung.id)
	}

	// The idle agent that answered every ping lived through the same pings
	// and is still connected: a kill reaches it.
	select {
	case <-healthy.closed:
		t.Fatal("the master closed the stream of an agent that answered its pings")
	default:
	}
	s.mustCall(calls.Kill("sleep-healthy", healthy.id))
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-healthy" || st.GetState() != mesos.TASK_KILLED {
		t.Errorf("kill on the healthy agent: %s %s", st.TaskID.Value, st.GetState())
	}

	// The hung agent resumes, reads the end of its stream and re-registers
	// with its task: reconciliation reports it RUNNING again.
	hungSub.Info.ID = &mesos.AgentID{Value: hung.id}
	hungSub.Tasks = []agentproto.Task{{FrameworkID: s.fwID, Info: launched["sleep-hung"], State: mesos.TASK_RUNNING}}
	if back := startAgentWith(t, srv.URL, hungSub); back.id != hung.id {
		t.Fatalf("re-registered as %s; want %s", back.id, hung.id)
	}
	s.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleep-hung": hung.id})))
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-hung" || st.GetState() != mesos.TASK_RUNNING {
		t.Errorf("after the agent came back, reconcile says %s %s", st.TaskID.Value, st.GetState())
	}
}
