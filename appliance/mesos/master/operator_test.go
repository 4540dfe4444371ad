package master_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpmaster"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	v1 "github.com/mesos/mesos-go/api/v1/lib/master"
	mcalls "github.com/mesos/mesos-go/api/v1/lib/master/calls"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// operatorClient is mesos-go's operator API client for the master at url,
// speaking media ("json" or "protobuf").
func operatorClient(url, media string) mcalls.Sender {
	codec := codecs.ByMediaType[codecs.MediaTypeJSON]
	if media == "protobuf" {
		codec = codecs.ByMediaType[codecs.MediaTypeProtobuf]
	}
	return httpmaster.NewSender(httpcli.New(httpcli.Endpoint(url+"/api/v1"), httpcli.Codec(codec)).Send)
}

// opCall sends one non-streaming call and decodes its response.
func opCall(t *testing.T, cli mcalls.Sender, call *v1.Call) *v1.Response {
	t.Helper()
	resp, err := cli.Send(context.Background(), mcalls.NonStreaming(call))
	if err != nil {
		t.Fatalf("%s: %v", call.GetType(), err)
	}
	defer resp.Close()
	var r v1.Response
	if err := resp.Decode(&r); err != nil {
		t.Fatalf("%s: decode: %v", call.GetType(), err)
	}
	if want := v1.Response_Type_value[call.GetType().String()]; int32(r.GetType()) != want {
		t.Fatalf("%s answered with %s", call.GetType(), r.GetType())
	}
	return &r
}

// opStream is a SUBSCRIBE stream read through mesos-go's decoder.
type opStream struct {
	t          *testing.T
	events     chan *v1.Event
	heartbeats int
}

func subscribeOperator(t *testing.T, cli mcalls.Sender) (*opStream, *v1.Event_Subscribed) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := cli.Send(ctx, mcalls.NonStreaming(mcalls.Subscribe()))
	if err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	s := &opStream{t: t, events: make(chan *v1.Event, 100)}
	mesostest.Pump[v1.Event](resp, s.events)
	ev := s.next()
	if ev.GetType() != v1.Event_SUBSCRIBED || ev.Subscribed.GetHeartbeatIntervalSeconds() <= 0 || ev.Subscribed.GetState == nil {
		t.Fatalf("first event %v", ev)
	}
	return s, ev.Subscribed
}

// next returns the next event but heartbeats, which it counts.
func (s *opStream) next() *v1.Event {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatal("operator stream closed")
			}
			if ev.GetType() == v1.Event_HEARTBEAT {
				s.heartbeats++
				continue
			}
			return ev
		case <-timeout:
			s.t.Fatal("no operator event within 10s")
		}
	}
}

// expect returns the next event, which must be of type want.
func (s *opStream) expect(want v1.Event_Type) *v1.Event {
	s.t.Helper()
	ev := s.next()
	if ev.GetType() != want {
		s.t.Fatalf("got %s, want %s: %v", ev.GetType(), want, ev)
	}
	return ev
}

func scalarSum(rs []mesos.Resource, name string) float64 {
	var n float64
	for _, r := range rs {
		if r.Name == name {
			n += r.GetScalar().GetValue()
		}
	}
	return n
}

func taskIDs(ts []mesos.Task) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.TaskID.Value+"="+t.GetState().String())
	}
	sort.Strings(out)
	return out
}

// TestOperatorCalls sends every read call of the v1 operator API through
// mesos-go's httpmaster client, in JSON and protobuf, to a master with an
// agent, a framework, a command task and an executor's task running, and a
// maintenance window on the agent's machine.
func TestOperatorCalls(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			m, srv := startMaster(t, master.Config{BuildVersion: "v9.9.9-test"})
			agent := startAgent(t, srv.URL)
			s := subscribe(t, srv.URL, media, framework("Aurora"))
			offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
			cmd := commandTask("cmd-1", &offer, 1, 64)
			cmd.Command.User = proto("www-data")
			ex := mesos.TaskInfo{
				Name: "ex-1", TaskID: mesos.TaskID{Value: "ex-1"}, AgentID: offer.AgentID,
				Executor:  &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "thermos-1"}, Command: &mesos.CommandInfo{Value: proto("run")}},
				Resources: []mesos.Resource{resources.NewCPUs(0.5).Resource, resources.NewMemory(32).Resource},
			}
			s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(cmd, ex)}.WithOffers(offer.ID)).With(calls.RefuseSeconds(0)))
			for i := 0; i < 2; i++ { // left unacknowledged: the tasks stay RUNNING
				if st := s.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_RUNNING {
					t.Fatalf("update %v", st)
				}
			}
			start := time.Now().Add(time.Hour)
			window := maintenance.Schedule{Windows: []maintenance.Window{{
				MachineIDs:     []mesos.MachineID{{Hostname: proto("agent1.local")}},
				Unavailability: mesos.Unavailability{Start: mesos.TimeInfo{Nanoseconds: start.UnixNano()}},
			}}}
			if err := m.SetSchedule(window); err != nil {
				t.Fatal(err)
			}
			s.next(scheduler.Event_INVERSE_OFFERS)
			cli := operatorClient(srv.URL, media)

			if r := opCall(t, cli, mcalls.GetHealth()); !r.GetHealth.Healthy {
				t.Errorf("GET_HEALTH: %v", r)
			}

			flags := map[string]string{}
			for _, f := range opCall(t, cli, mcalls.GetFlags()).GetFlags.Flags {
				flags[f.Name] = f.GetValue()
			}
			_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
			for k, v := range map[string]string{"hostname": "127.0.0.1", "port": port, "agent_ping_timeout": "15secs",
				"max_agent_ping_timeouts": "5", "heartbeat_interval": "15secs", "agent_removal_timeout": "1.25mins",
				"authenticate_agents": "true"} {
				if flags[k] != v {
					t.Errorf("GET_FLAGS %s = %q, want %q (all: %v)", k, flags[k], v, flags)
				}
			}
			for _, p := range []string{"/master/flags", "/flags", "/master/state"} {
				var v0 struct{ Flags map[string]string }
				if err := json.Unmarshal([]byte(get(t, srv.URL+p)), &v0); err != nil || len(v0.Flags) != len(flags) {
					t.Errorf("%s: %v %v", p, v0.Flags, err)
				}
				for k, v := range flags {
					if v0.Flags[k] != v {
						t.Errorf("%s %s = %q, GET_FLAGS says %q", p, k, v0.Flags[k], v)
					}
				}
			}

			if v := opCall(t, cli, mcalls.GetVersion()).GetVersion.VersionInfo; v.Version != mesosutil.MesosAPIVersion || v.GetGitTag() != "v9.9.9-test" || v.GetBuildUser() != "aurorabox" {
				t.Errorf("GET_VERSION: %v", v)
			}

			fws := opCall(t, cli, mcalls.GetFrameworks()).GetFrameworks
			if len(fws.Frameworks) != 1 || len(fws.CompletedFrameworks) != 0 {
				t.Fatalf("GET_FRAMEWORKS: %v", fws)
			}
			fw := fws.Frameworks[0]
			if fw.FrameworkInfo.GetID().GetValue() != s.fwID || fw.FrameworkInfo.Name != "Aurora" || !fw.Active || !fw.Connected ||
				fw.RegisteredTime == nil || scalarSum(fw.AllocatedResources, "cpus") != 1.5 || len(fw.InverseOffers) != 1 {
				t.Errorf("GET_FRAMEWORKS framework: %v", fw)
			}
			if len(fw.Offers) != 1 || fw.Offers[0].AgentID.Value != agent.id || scalarSum(fw.OfferedResources, "cpus") != 2.5 {
				t.Errorf("GET_FRAMEWORKS offers %v, offered %v", fw.Offers, fw.OfferedResources)
			}

			agents := opCall(t, cli, mcalls.GetAgents()).GetAgents
			if len(agents.Agents) != 1 {
				t.Fatalf("GET_AGENTS: %v", agents)
			}
			a := agents.Agents[0]
			if a.AgentInfo.GetID().GetValue() != agent.id || a.AgentInfo.Hostname != "agent1.local" || !a.Active || a.Version != mesosutil.MesosAPIVersion ||
				a.GetPID() != "slave(1)@127.0.0.1:5051" || scalarSum(a.TotalResources, "cpus") != 4 || scalarSum(a.AllocatedResources, "cpus") != 1.5 ||
				scalarSum(a.OfferedResources, "cpus") != 2.5 {
				t.Errorf("GET_AGENTS agent: %v", a)
			}

			tasks := opCall(t, cli, mcalls.GetTasks()).GetTasks
			if got := strings.Join(taskIDs(tasks.Tasks), " "); got != "cmd-1=TASK_RUNNING ex-1=TASK_RUNNING" || len(tasks.CompletedTasks) != 0 {
				t.Errorf("GET_TASKS: %s, completed %v", got, tasks.CompletedTasks)
			}
			for _, tk := range tasks.Tasks {
				if wantUser := map[string]string{"cmd-1": "www-data"}[tk.TaskID.Value]; tk.FrameworkID.Value != s.fwID || tk.AgentID.Value != agent.id ||
					len(tk.Statuses) != 1 || tk.GetUser() != wantUser {
					t.Errorf("GET_TASKS task %v", tk)
				}
				if (tk.TaskID.Value == "ex-1") != (tk.GetExecutorID().GetValue() == "thermos-1") {
					t.Errorf("task %s has executor %v", tk.TaskID.Value, tk.ExecutorID)
				}
				if tk.TaskID.Value == "cmd-1" && tk.GetDiscovery().GetName() != "hello.devel.www-data" {
					t.Errorf("task cmd-1 lost its discovery info: %v", tk.Discovery)
				}
			}

			exs := opCall(t, cli, mcalls.GetExecutors()).GetExecutors
			if len(exs.Executors) != 1 || exs.Executors[0].ExecutorInfo.ExecutorID.Value != "thermos-1" ||
				exs.Executors[0].AgentID.Value != agent.id || exs.Executors[0].ExecutorInfo.GetFrameworkID().GetValue() != s.fwID {
				t.Errorf("GET_EXECUTORS: %v", exs)
			}

			sched := opCall(t, cli, mcalls.GetMaintenanceSchedule()).GetMaintenanceSchedule.Schedule
			if len(sched.Windows) != 1 || sched.Windows[0].MachineIDs[0].GetHostname() != "agent1.local" ||
				sched.Windows[0].Unavailability.Start.Nanoseconds != start.UnixNano() {
				t.Errorf("GET_MAINTENANCE_SCHEDULE: %v", sched)
			}
			status := opCall(t, cli, mcalls.GetMaintenanceStatus()).GetMaintenanceStatus.Status
			if len(status.DrainingMachines) != 1 || status.DrainingMachines[0].ID.GetHostname() != "agent1.local" ||
				len(status.DrainingMachines[0].Statuses) != 1 || status.DrainingMachines[0].Statuses[0].FrameworkID.Value != s.fwID ||
				status.DrainingMachines[0].Statuses[0].GetStatus().String() != "UNKNOWN" || len(status.DownMachines) != 0 {
				t.Errorf("GET_MAINTENANCE_STATUS: %v", status)
			}

			// GET_STATE has what the calls above return, and what
			// /master/state shows; SUBSCRIBED starts from the same state.
			st := opCall(t, cli, mcalls.GetState()).GetState
			if !st.GetFrameworks.Equal(fws) || !st.GetAgents.Equal(agents) || !st.GetTasks.Equal(tasks) || !st.GetExecutors.Equal(exs) {
				t.Errorf("GET_STATE differs from the other calls: %v", st)
			}
			var v0 struct {
				Frameworks []struct {
					ID    string
					Tasks []struct{ ID, State string }
				}
				Slaves []struct{ ID string }
			}
			if err := json.Unmarshal([]byte(get(t, srv.URL+"/master/state")), &v0); err != nil {
				t.Fatal(err)
			}
			if len(v0.Frameworks) != 1 || v0.Frameworks[0].ID != s.fwID || len(v0.Frameworks[0].Tasks) != 2 || len(v0.Slaves) != 1 || v0.Slaves[0].ID != agent.id {
				t.Errorf("/master/state: %+v", v0)
			}
			for _, tk := range v0.Frameworks[0].Tasks {
				if !strings.Contains(strings.Join(taskIDs(tasks.Tasks), " "), tk.ID+"="+tk.State) {
					t.Errorf("/master/state task %s=%s is not in GET_STATE", tk.ID, tk.State)
				}
			}
			// jq and friends iterate over [], not over null.
			if body := postOperator(t, srv.URL, `{"type":"GET_STATE"}`); strings.Contains(body, "null") || !strings.Contains(body, `"completed_tasks":[]`) {
				t.Errorf("GET_STATE's JSON has null lists: %s", body)
			}
			_, subscribed := subscribeOperator(t, cli)
			if !subscribed.GetState.GetTasks.Equal(tasks) || !subscribed.GetState.GetAgents.Equal(agents) || !subscribed.GetState.GetFrameworks.Equal(fws) {
				t.Errorf("SUBSCRIBED state differs from GET_STATE: %v", subscribed.GetState)
			}
			if gm := opCall(t, cli, mcalls.GetMaster()).GetMaster; gm.GetMasterInfo().GetID() != m.ID() || gm.GetStartTime() <= 0 {
				t.Errorf("GET_MASTER: %v", gm)
			}

			// Calls that change the cluster are refused, by name.
			for _, c := range []*v1.Call{mcalls.Teardown(mesos.FrameworkID{Value: s.fwID}), mcalls.UpdateMaintenanceSchedule(maintenance.Schedule{}),
				mcalls.MarkAgentGone(mesos.AgentID{Value: agent.id}), mcalls.ReserveResources(mesos.AgentID{Value: agent.id})} {
				resp, err := cli.Send(context.Background(), mcalls.NonStreaming(c))
				if resp != nil {
					resp.Close()
				}
				if err == nil || !strings.Contains(err.Error(), c.GetType().String()) {
					t.Errorf("%s: %v, want an error naming the call", c.GetType(), err)
				}
			}
			if n := len(opCall(t, cli, mcalls.GetFrameworks()).GetFrameworks.Frameworks); n != 1 {
				t.Errorf("after a refused TEARDOWN, %d frameworks", n)
			}
		})
	}
}

// postOperator posts a JSON call and returns the JSON answer.
func postOperator(t *testing.T, url, call string) string {
	t.Helper()
	resp, err := http.Post(url+"/api/v1", "application/json", strings.NewReader(call))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s %s", call, resp.Status, b)
	}
	return string(b)
}

// TestOperatorBadRequests: what the operator API refuses, and why.
func TestOperatorBadRequests(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	post := func(ct, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		name, ct, body string
		code           int
		msg            string
	}{
		{"wrong media type", "text/plain", `{}`, 415, "Content-Type"},
		{"malformed json", "application/json", `{"type":`, 400, "Failed to parse"},
		{"no type", "application/json", `{}`, 400, "'type'"},
		{"unknown type", "application/json", `{"type":"NOPE"}`, 400, "Failed to parse"},
		{"mutating call", "application/json", `{"type":"TEARDOWN","teardown":{"framework_id":{"value":"x"}}}`, 501, "TEARDOWN is not supported"},
		{"unsupported read", "application/json", `{"type":"GET_METRICS"}`, 501, "GET_METRICS is not supported"},
		{"too large", "application/json", `{"type":"GET_HEALTH","x":"` + strings.Repeat("a", 5<<20) + `"}`, 413, "larger than 65536 bytes"},
	} {
		if code, msg := post(tt.ct, tt.body); code != tt.code || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tt.name, code, msg, tt.code, tt.msg)
		}
	}
	if r, err := http.Get(srv.URL + "/api/v1"); err != nil || r.StatusCode != 405 {
		t.Errorf("GET /api/v1: %v %v", r, err)
	}
}

// TestOperatorSubscribeEvents follows a framework, an agent and a task from
// the operator API's event stream, in JSON and protobuf: the events Mesos
// sends, in the order the master made the changes.
func TestOperatorSubscribeEvents(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			_, srv := startMaster(t, master.Config{HeartbeatInterval: 20 * time.Millisecond, AgentRemovalTimeout: 50 * time.Millisecond})
			ops, subscribed := subscribeOperator(t, operatorClient(srv.URL, media))
			if n := len(subscribed.GetState.GetAgents.Agents) + len(subscribed.GetState.GetFrameworks.Frameworks) + len(subscribed.GetState.GetTasks.Tasks); n != 0 {
				t.Fatalf("SUBSCRIBED to an empty master: %v", subscribed)
			}

			agent := startAgent(t, srv.URL)
			if a := ops.expect(v1.Event_AGENT_ADDED).AgentAdded.Agent; a.AgentInfo.GetID().GetValue() != agent.id || !a.Active || scalarSum(a.TotalResources, "cpus") != 4 {
				t.Errorf("AGENT_ADDED: %v", a)
			}
			info := framework("Aurora")
			s := subscribe(t, srv.URL, "json", info)
			if f := ops.expect(v1.Event_FRAMEWORK_ADDED).FrameworkAdded.Framework; f.FrameworkInfo.GetID().GetValue() != s.fwID || f.FrameworkInfo.Name != "Aurora" || !f.Connected {
				t.Errorf("FRAMEWORK_ADDED: %v", f)
			}

			offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
			s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("hello-1", &offer, 1, 64))}.WithOffers(offer.ID)))
			added := ops.expect(v1.Event_TASK_ADDED).TaskAdded.Task
			if added.TaskID.Value != "hello-1" || added.GetState() != mesos.TASK_STAGING || added.FrameworkID.Value != s.fwID || added.AgentID.Value != agent.id {
				t.Errorf("TASK_ADDED: %v", added)
			}
			for _, want := range []mesos.TaskState{mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
				st := s.next(scheduler.Event_UPDATE).Update.Status
				u := ops.expect(v1.Event_TASK_UPDATED).TaskUpdated
				if u.Status.TaskID.Value != "hello-1" || u.GetState() != want || u.Status.GetState() != want || u.FrameworkID.Value != s.fwID ||
					u.Status.GetAgentID().GetValue() != agent.id {
					t.Errorf("TASK_UPDATED: %v, want %s", u, want)
				}
				s.ack(st)
			}

			// launch starts a task that stays RUNNING (its update is not
			// acknowledged).
			launch := func(s *sched, id string) {
				t.Helper()
				offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
				s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask(id, &offer, 1, 64))}.WithOffers(offer.ID)))
				s.next(scheduler.Event_UPDATE)
				if tk := ops.expect(v1.Event_TASK_ADDED).TaskAdded.Task; tk.TaskID.Value != id {
					t.Errorf("TASK_ADDED %v, want %s", tk, id)
				}
				if u := ops.expect(v1.Event_TASK_UPDATED).TaskUpdated; u.Status.TaskID.Value != id || u.GetState() != mesos.TASK_RUNNING {
					t.Errorf("TASK_UPDATED %v, want %s RUNNING", u, id)
				}
			}
			launch(s, "sleep-2")

			// The framework fails over (subscribes again with its id),
			// then is torn down: its task is killed by the master.
			info.ID = &mesos.FrameworkID{Value: s.fwID}
			s2 := subscribe(t, srv.URL, "json", info)
			if f := ops.expect(v1.Event_FRAMEWORK_UPDATED).FrameworkUpdated.Framework; f.FrameworkInfo.GetID().GetValue() != s.fwID || f.ReregisteredTime == nil {
				t.Errorf("FRAMEWORK_UPDATED: %v", f)
			}
			s2.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
			if u := ops.expect(v1.Event_TASK_UPDATED).TaskUpdated; u.Status.TaskID.Value != "sleep-2" || u.GetState() != mesos.TASK_KILLED ||
				u.Status.GetReason() != mesos.REASON_FRAMEWORK_REMOVED || u.Status.GetSource() != mesos.SOURCE_MASTER {
				t.Errorf("TASK_UPDATED at teardown: %v", u)
			}
			if f := ops.expect(v1.Event_FRAMEWORK_REMOVED).FrameworkRemoved.FrameworkInfo; f.GetID().GetValue() != s.fwID {
				t.Errorf("FRAMEWORK_REMOVED: %v", f)
			}

			// Another framework's task is lost with its agent.
			other := subscribe(t, srv.URL, "json", framework("Other"))
			ops.expect(v1.Event_FRAMEWORK_ADDED)
			launch(other, "lost-3")
			agent.cancel() // gone past the removal timeout
			if u := ops.expect(v1.Event_TASK_UPDATED).TaskUpdated; u.Status.TaskID.Value != "lost-3" || u.GetState() != mesos.TASK_LOST ||
				u.Status.GetReason() != mesos.REASON_AGENT_REMOVED || u.FrameworkID.Value != other.fwID {
				t.Errorf("TASK_UPDATED when the agent is removed: %v", u)
			}
			if id := ops.expect(v1.Event_AGENT_REMOVED).AgentRemoved.AgentID; id.Value != agent.id {
				t.Errorf("AGENT_REMOVED: %v", id)
			}
			for ops.heartbeats == 0 {
				ops.next()
			}
		})
	}
}

// TestOperatorSubscribeRecordIO: a client that asks for
// application/recordio (Mesos ≥ 1.2) gets the framing named in
// Content-Type and the records' type in Message-Content-Type.
func TestOperatorSubscribeRecordIO(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1", strings.NewReader(`{"type":"SUBSCRIBE"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/recordio")
	req.Header.Set("Message-Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/recordio" || resp.Header.Get("Message-Content-Type") != "application/json" {
		t.Fatalf("%s %v", resp.Status, resp.Header)
	}
	var buf [64]byte
	k, _ := io.ReadAtLeast(resp.Body, buf[:], 20)
	head, rest, _ := strings.Cut(string(buf[:k]), "\n")
	if _, err := json.Number(head).Int64(); err != nil || !strings.HasPrefix(rest, `{"type":"SUBSCRIBED"`) {
		t.Fatalf("first record %q", buf[:k])
	}
}

// TestOperatorEventsOfARecoveredAgent: an agent that re-registers with a
// master that restarted is added, and so are the framework and the live
// task the master learns from it; the framework's subscription then
// updates it.
func TestOperatorEventsOfARecoveredAgent(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	ops, _ := subscribeOperator(t, operatorClient(srv.URL, "protobuf"))
	sub := agentSubscribe()
	sub.Info.ID = &mesos.AgentID{Value: "old-master-S0"}
	fw := framework("Aurora")
	fw.ID = &mesos.FrameworkID{Value: "old-master-0000"}
	sub.Frameworks = []mesos.FrameworkInfo{*fw}
	task := mesos.TaskInfo{Name: "sleep-rr", TaskID: mesos.TaskID{Value: "sleep-rr"}, AgentID: *sub.Info.ID,
		Command:   &mesos.CommandInfo{Value: proto("sleep 300")},
		Resources: []mesos.Resource{resources.NewCPUs(1).Resource, resources.NewMemory(64).Resource}}
	sub.Tasks = []agentproto.Task{{FrameworkID: fw.ID.Value, Info: task, State: mesos.TASK_RUNNING}}
	startAgentWith(t, srv.URL, sub)

	if a := ops.expect(v1.Event_AGENT_ADDED).AgentAdded.Agent; a.AgentInfo.GetID().GetValue() != "old-master-S0" {
		t.Errorf("AGENT_ADDED: %v", a)
	}
	if f := ops.expect(v1.Event_FRAMEWORK_ADDED).FrameworkAdded.Framework; f.FrameworkInfo.GetID().GetValue() != fw.ID.Value || !f.Recovered || f.Connected {
		t.Errorf("FRAMEWORK_ADDED: %v", f)
	}
	if tk := ops.expect(v1.Event_TASK_ADDED).TaskAdded.Task; tk.TaskID.Value != "sleep-rr" || tk.GetState() != mesos.TASK_RUNNING || tk.FrameworkID.Value != fw.ID.Value {
		t.Errorf("TASK_ADDED: %v", tk)
	}
	subscribe(t, srv.URL, "json", fw)
	if f := ops.expect(v1.Event_FRAMEWORK_UPDATED).FrameworkUpdated.Framework; f.Recovered || !f.Connected {
		t.Errorf("FRAMEWORK_UPDATED: %v", f)
	}
}
