package master_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// raw returns the next event of the stream itself, heartbeats included.
func (s *sched) raw() *scheduler.Event {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10s")
	}
	return nil
}

// quiet fails on any event but heartbeats until n heartbeats have passed:
// the stream's own clock tells that nothing else was coming.
func (s *sched) quiet(n int, what string) {
	s.t.Helper()
	for n > 0 {
		ev := s.raw()
		if ev.Type != scheduler.Event_HEARTBEAT {
			s.t.Fatalf("%s: got %s: %v", what, ev.Type, ev)
		}
		n--
	}
}

func launchSleeper(t *testing.T, s *sched, id string) mesos.Offer {
	t.Helper()
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask(id, &offer, 1, 64))}.WithOffers(offer.ID)))
	st := s.next(scheduler.Event_UPDATE).Update.Status
	if st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("%s: %s", id, st.GetState())
	}
	s.ack(st)
	return offer
}

func TestHeartbeatsArrive(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			_, srv := startMaster(t, master.Config{HeartbeatInterval: 20 * time.Millisecond})
			s := subscribe(t, srv.URL, media, framework("Aurora"))
			if got := s.subscribed.GetHeartbeatIntervalSeconds(); got != 0.02 {
				t.Fatalf("heartbeat_interval_seconds %v, want 0.02", got)
			}
			s.quiet(3, "an idle framework with no agents")
		})
	}
}

func TestRedirectToLeader(t *testing.T) {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		name, hostname, path string
		wantHost             string // "" = the listen address's host
	}{
		{"master/redirect by address", "", "/master/redirect", ""},
		{"redirect by address", "", "/redirect", ""},
		{"master/redirect by hostname", "master1.example", "/master/redirect", "master1.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, srv := startMaster(t, master.Config{Hostname: tt.hostname})
			resp, err := noFollow.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			host := tt.wantHost
			if host == "" {
				host = "127.0.0.1"
			}
			want := fmt.Sprintf("//%s:%d", host, m.MasterInfo().GetPort())
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
				t.Fatalf("%s: %s Location %q, want 307 %q", tt.path, resp.Status, resp.Header.Get("Location"), want)
			}
		})
	}
}

// SUPPRESS: neither declined resources nor a new agent are offered until
// REVIVE, which offers both.
func TestSuppressUntilRevive(t *testing.T) {
	_, srv := startMaster(t, master.Config{HeartbeatInterval: 20 * time.Millisecond, DeclineDelay: 5 * time.Millisecond})
	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Suppress())
	s.mustCall(calls.Decline(offer.ID))
	sub := agentSubscribe()
	sub.Info.Hostname = "agent2.local"
	startAgentWith(t, srv.URL, sub)
	s.quiet(3, "suppressed")

	s.mustCall(calls.Revive())
	hosts := map[string]bool{}
	for len(hosts) < 2 {
		for _, o := range s.next(scheduler.Event_OFFERS).Offers.Offers {
			hosts[o.Hostname] = true
		}
	}
	if !hosts["agent1.local"] || !hosts["agent2.local"] {
		t.Fatalf("offers after REVIVE: %v", hosts)
	}
}

// TEARDOWN: the agents shut the framework down (killing its tasks), the
// stream ends, and the framework moves to completed_frameworks with its
// tasks TASK_KILLED and their resources freed.
func TestTeardown(t *testing.T) {
	m, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	launchSleeper(t, s, "sleep-td")
	s.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	if c := agent.command(agentproto.CmdShutdownFramework); c.FrameworkID != s.fwID {
		t.Fatalf("shutdown of %q, want %q", c.FrameworkID, s.fwID)
	}
	for ev := range s.events {
		if ev.Type != scheduler.Event_HEARTBEAT && ev.Type != scheduler.Event_OFFERS {
			t.Fatalf("after TEARDOWN: %v", ev)
		}
	}
	st := m.State()
	if n := len(st["frameworks"].([]map[string]any)); n != 0 {
		t.Fatalf("%d frameworks remain", n)
	}
	done := st["completed_frameworks"].([]map[string]any)
	if len(done) != 1 || done[0]["id"] != s.fwID {
		t.Fatalf("completed_frameworks %v", done)
	}
	tasks := done[0]["completed_tasks"].([]map[string]any)
	if len(tasks) != 1 || tasks[0]["id"] != "sleep-td" || tasks[0]["state"] != "TASK_KILLED" {
		t.Fatalf("completed_tasks %v", tasks)
	}
	if used := st["slaves"].([]map[string]any)[0]["used_resources"].(map[string]any); used["cpus"] != 0.0 {
		t.Fatalf("agent still uses %v", used)
	}
}

func TestShutdownExecutorReachesAgent(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	launchSleeper(t, s, "sleep-sd")
	s.mustCall(calls.Shutdown("sleep-sd", agent.id))
	if c := agent.command(agentproto.CmdShutdownExecutor); c.FrameworkID != s.fwID || c.ExecutorID != "sleep-sd" {
		t.Fatalf("agent got %+v", c)
	}
}

// MESSAGE goes scheduler → master → agent, and executor → agent → master →
// scheduler with the agent and executor ids; data survives both codecs.
func TestMessagesBothWays(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			_, srv := startMaster(t, master.Config{})
			agent := startAgent(t, srv.URL)
			s := subscribe(t, srv.URL, media, framework("Aurora"))
			data := []byte("ping \x00\xff")
			s.mustCall(calls.Message(agent.id, "thermos-1", data))
			c := agent.command(agentproto.CmdMessage)
			if c.FrameworkID != s.fwID || c.ExecutorID != "thermos-1" || !bytes.Equal(c.Data, data) {
				t.Fatalf("agent got %+v", c)
			}
			agent.post(agentproto.MessagePath, agentproto.Message{AgentID: agent.id, FrameworkID: s.fwID, ExecutorID: "thermos-1", Data: []byte("pong")})
			msg := s.next(scheduler.Event_MESSAGE).Message
			if msg.AgentID.Value != agent.id || msg.ExecutorID.Value != "thermos-1" || string(msg.Data) != "pong" {
				t.Fatalf("framework got %v", msg)
			}
		})
	}
}

// An executor's exit reaches its framework as FAILURE with the agent, the
// executor and the wait status (exit code 1 → 256, as waitpid reports).
func TestExecutorFailure(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "protobuf", framework("Aurora"))
	status := int32(256)
	agent.post(agentproto.ExecutorExitedPath, agentproto.ExecutorExited{AgentID: agent.id, FrameworkID: "unknown", ExecutorID: "x"})
	agent.post(agentproto.ExecutorExitedPath, agentproto.ExecutorExited{AgentID: agent.id, FrameworkID: s.fwID, ExecutorID: "thermos-1", Status: &status})
	f := s.next(scheduler.Event_FAILURE).Failure
	if f.GetAgentID().GetValue() != agent.id || f.GetExecutorID().GetValue() != "thermos-1" || f.Status == nil || f.GetStatus() != 256 {
		t.Fatalf("failure %v", f)
	}
}

// A master that restarted learns an agent's tasks and their framework when
// the agent re-registers with its old id; the framework re-subscribes with
// its id and finds them, and a kill reaches the agent.
func TestAgentReregistrationRecoversTasks(t *testing.T) {
	m, srv := startMaster(t, master.Config{})
	sub := agentSubscribe()
	sub.Info.ID = &mesos.AgentID{Value: "old-master-S0"}
	fw := framework("Aurora")
	fw.ID = &mesos.FrameworkID{Value: "old-master-0000"}
	fw.FailoverTimeout = floatp(60)
	sub.Frameworks = []mesos.FrameworkInfo{*fw}
	task := mesos.TaskInfo{Name: "sleep-rr", TaskID: mesos.TaskID{Value: "sleep-rr"}, AgentID: *sub.Info.ID,
		Command:   &mesos.CommandInfo{Value: proto("sleep 300")},
		Resources: []mesos.Resource{resources.NewCPUs(1).Resource, resources.NewMemory(64).Resource}}
	done := task
	done.TaskID.Value = "finished-rr"
	sub.Tasks = []agentproto.Task{
		{FrameworkID: fw.ID.Value, Info: task, State: mesos.TASK_RUNNING},
		{FrameworkID: fw.ID.Value, Info: done, State: mesos.TASK_FINISHED},
	}
	agent := startAgentWith(t, srv.URL, sub)
	if agent.id != "old-master-S0" {
		t.Fatalf("agent got a new id %s", agent.id)
	}
	st := m.State()
	fws := st["frameworks"].([]map[string]any)
	if len(fws) != 1 || fws[0]["id"] != fw.ID.Value || fws[0]["recovered"] != true || fws[0]["connected"] != false {
		t.Fatalf("frameworks %v", fws)
	}
	if tasks := fws[0]["tasks"].([]map[string]any); len(tasks) != 1 || tasks[0]["id"] != "sleep-rr" || tasks[0]["state"] != "TASK_RUNNING" {
		t.Fatalf("tasks %v", tasks)
	}
	if used := st["slaves"].([]map[string]any)[0]["used_resources"].(map[string]any); used["cpus"] != 1.0 {
		t.Fatalf("agent uses %v", used)
	}

	s := subscribe(t, srv.URL, "json", fw)
	if s.fwID != fw.ID.Value {
		t.Fatalf("re-subscribed as %s", s.fwID)
	}
	s.mustCall(calls.Reconcile())
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-rr" || st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("reconcile: %v", st)
	}
	// Only the agent's other 3 cpus are offered.
	if c, _ := resources.CPUs(s.next(scheduler.Event_OFFERS).Offers.Offers[0].Resources...); c != 3 {
		t.Fatalf("offered %v cpus", c)
	}
	s.mustCall(calls.Kill("sleep-rr", agent.id))
	if c := agent.command(agentproto.CmdKill); c.TaskID != "sleep-rr" || c.FrameworkID != fw.ID.Value {
		t.Fatalf("agent got %+v", c)
	}
}
