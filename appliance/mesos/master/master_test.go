package master_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// testAgentSecret is the agent secret of the test masters (startMaster)
// and their fake agents.
var testAgentSecret = []byte("test-agent-secret-0123456789abcdef0123456789")

// agentPost POSTs a JSON body on an internal agent path, as an agent does.
func agentPost(url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", agentproto.Authorization(testAgentSecret))
	return http.DefaultClient.Do(req)
}

func startMaster(t testing.TB, cfg master.Config) (*master.Master, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg.ListenAddr = srv.Listener.Addr().String()
	if cfg.AgentSecret == nil && !cfg.InsecureAgents {
		cfg.AgentSecret = testAgentSecret
	}
	// Its frameworks run as root: these tests are not about that (see
	// frameworkauth_test.go, which starts its masters without it).
	cfg.RootSubmissions = true
	m := master.New(cfg)
	srv.Config.Handler = m.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return m, srv
}

// fakeAgent speaks the internal agent protocol: it runs every launched task
// to TASK_RUNNING and, once that update is acknowledged, to TASK_FINISHED,
// unless the task's command is "sleep", which runs until killed.
type fakeAgent struct {
	t      testing.TB
	url    string
	id     string
	mu     sync.Mutex
	acked  map[string]int // task id → acknowledged updates
	tasks  map[string]string
	ready  chan struct{}
	cancel context.CancelFunc
	cmds   chan agentproto.Command // every command but heartbeats
	mute   atomic.Bool             // leave the master's pings unanswered, as a hung agent
	closed chan struct{}           // the master ended the command stream
}

func agentResources() []mesos.Resource {
	return []mesos.Resource{
		resources.NewCPUs(4).Resource, resources.NewMemory(1024).Resource, resources.NewDisk(2048).Resource,
		resources.Build().Name(resources.NamePorts).Ranges(resources.BuildRanges().Span(31000, 32000).Ranges).Resource,
	}
}

func agentSubscribe() agentproto.Subscribe {
	return agentproto.Subscribe{
		Info: mesos.AgentInfo{Hostname: "agent1.local", Resources: agentResources(),
			Attributes: []mesos.Attribute{{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "r1"}}}},
		PID: "slave(1)@127.0.0.1:5051",
	}
}

func startAgent(t testing.TB, url string) *fakeAgent {
	return startAgentWith(t, url, agentSubscribe())
}

// startAgentWith registers a fake agent with sub (an agent id and tasks
// make it a re-registration).
func startAgentWith(t testing.TB, url string, sub agentproto.Subscribe) *fakeAgent {
	ctx, cancel := context.WithCancel(context.Background())
	a := &fakeAgent{t: t, url: url, acked: map[string]int{}, tasks: map[string]string{}, ready: make(chan struct{}), cancel: cancel,
		cmds: make(chan agentproto.Command, 100), closed: make(chan struct{})}
	t.Cleanup(cancel)
	body, _ := json.Marshal(sub)
	req, _ := http.NewRequestWithContext(ctx, "POST", url+agentproto.SubscribePath, bytes.NewReader(body))
	req.Header.Set("Authorization", agentproto.Authorization(testAgentSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	go a.loop(resp.Body)
	<-a.ready
	return a
}

func (a *fakeAgent) loop(body io.ReadCloser) {
	defer close(a.closed)
	defer body.Close()
	r := bufio.NewReader(body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(strings.TrimSpace(line))
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var c agentproto.Command
		json.Unmarshal(buf, &c)
		if c.Type != agentproto.CmdHeartbeat {
			select {
			case a.cmds <- c:
			default:
			}
		}
		switch c.Type {
		case agentproto.CmdRegistered:
			a.id = c.AgentID
			close(a.ready)
		case agentproto.CmdHeartbeat:
			if !a.mute.Load() {
				body, _ := json.Marshal(agentproto.Pong{AgentID: a.id})
				if resp, err := agentPost(a.url+agentproto.PongPath, body); err == nil {
					resp.Body.Close()
				}
			}
		case agentproto.CmdLaunch:
			for _, task := range c.Tasks {
				a.mu.Lock()
				a.tasks[task.TaskID.Value] = c.FrameworkID
				a.mu.Unlock()
				a.update(c.FrameworkID, task.TaskID.Value, mesos.TASK_RUNNING)
			}
		case agentproto.CmdAcknowledge:
			a.mu.Lock()
			a.acked[c.TaskID]++
			n := a.acked[c.TaskID]
			a.mu.Unlock()
			if n == 1 && !strings.Contains(c.TaskID, "sleep") {
				a.update(c.FrameworkID, c.TaskID, mesos.TASK_FINISHED)
			}
		case agentproto.CmdKill:
			a.update(c.FrameworkID, c.TaskID, mesos.TASK_KILLED)
		}
	}
}

func (a *fakeAgent) update(fw, task string, state mesos.TaskState) {
	ts := float64(time.Now().UnixNano()) / 1e9
	body, _ := json.Marshal(agentproto.Update{AgentID: a.id, FrameworkID: fw, Status: mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: task}, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		UUID: []byte(task + state.String()), Timestamp: &ts,
	}})
	resp, err := agentPost(a.url+agentproto.UpdatePath, body)
	if err == nil {
		resp.Body.Close()
	}
}

// command returns the next command of type want the agent received.
func (a *fakeAgent) command(want string) agentproto.Command {
	a.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-a.cmds:
			if c.Type == want {
				return c
			}
		case <-timeout:
			a.t.Fatalf("agent got no %s command", want)
		}
	}
}

// post sends one of the agent's reports (message, executor exit) to the master.
func (a *fakeAgent) post(path string, v any) {
	a.t.Helper()
	body, _ := json.Marshal(v)
	resp, err := agentPost(a.url+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		a.t.Fatalf("%s: %s", path, resp.Status)
	}
}

func (a *fakeAgent) ackCount(task string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked[task]
}

// sched is a framework built on mesos-go's HTTP scheduler client.
type sched struct {
	t          testing.TB
	caller     calls.Caller
	events     chan *scheduler.Event
	queued     []*scheduler.Event // events that arrived while waiting for another type
	fwID       string
	subscribed *scheduler.Event_Subscribed
	cancel     context.CancelFunc
}

func subscribe(t testing.TB, url string, media string, info *mesos.FrameworkInfo) *sched {
	t.Helper()
	cli := httpcli.New(httpcli.Endpoint(url+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]))
	if media == "protobuf" {
		cli = httpcli.New(httpcli.Endpoint(url+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]))
	}
	caller := httpsched.NewCaller(cli)
	ctx, cancel := context.WithCancel(context.Background())
	s := &sched{t: t, caller: caller, events: make(chan *scheduler.Event, 100), cancel: cancel}
	t.Cleanup(cancel)
	call := calls.Subscribe(info)
	if info.ID != nil {
		call = call.With(calls.SubscribeTo(info.ID.Value))
	}
	resp, err := caller.Call(ctx, call)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	mesostest.Pump[scheduler.Event](resp, s.events)
	ev := s.next(scheduler.Event_SUBSCRIBED)
	s.fwID = ev.Subscribed.FrameworkID.Value
	s.subscribed = ev.Subscribed
	if ev.Subscribed.GetHeartbeatIntervalSeconds() <= 0 || ev.Subscribed.MasterInfo == nil {
		t.Fatalf("SUBSCRIBED lacks heartbeat or master info: %v", ev)
	}
	return s
}

// next returns the next event of type want, skipping heartbeats.
func (s *sched) next(want scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	for i, ev := range s.queued {
		if ev.Type == want {
			s.queued = append(s.queued[:i], s.queued[i+1:]...)
			return ev
		}
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream closed while waiting for %s", want)
			}
			if ev.Type == want {
				return ev
			}
			switch ev.Type {
			case scheduler.Event_HEARTBEAT:
			case scheduler.Event_OFFERS, scheduler.Event_RESCIND, scheduler.Event_UPDATE, scheduler.Event_FAILURE, scheduler.Event_MESSAGE:
				s.queued = append(s.queued, ev)
			default:
				s.t.Fatalf("got %s while waiting for %s: %v", ev.Type, want, ev)
			}
		case <-timeout:
			s.t.Fatalf("timed out waiting for %s", want)
		}
	}
}

func (s *sched) call(c *scheduler.Call) error {
	resp, err := s.caller.Call(context.Background(), c.With(calls.Framework(s.fwID)))
	if resp != nil {
		resp.Close()
	}
	return err
}

func (s *sched) mustCall(c *scheduler.Call) {
	s.t.Helper()
	if err := s.call(c); err != nil {
		s.t.Fatalf("%s: %v", c.GetType(), err)
	}
}

func (s *sched) ack(st mesos.TaskStatus) {
	s.t.Helper()
	if st.UUID != nil {
		s.mustCall(calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID))
	}
}

func commandTask(id string, offer *mesos.Offer, cpus, mem float64) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: offer.AgentID,
		Command:   &mesos.CommandInfo{Value: proto("echo hello")},
		Resources: []mesos.Resource{resources.NewCPUs(cpus).Resource, resources.NewMemory(mem).Resource},
		Discovery: &mesos.DiscoveryInfo{Visibility: mesos.FRAMEWORK, Name: proto("hello.devel.www-data"),
			Ports: &mesos.Ports{Ports: []mesos.Port{{Number: 31001, Name: proto("http"), Protocol: proto("tcp")}}}},
	}
}

func proto(s string) *string { return &s }

func framework(name string) *mesos.FrameworkInfo {
	return &mesos.FrameworkInfo{User: "root", Name: name, Hostname: proto("localhost")}
}

func TestLaunchAckFinishBothCodecs(t *testing.T) {
	for _, media := range []string{"json", "protobuf"} {
		t.Run(media, func(t *testing.T) {
			_, srv := startMaster(t, master.Config{})
			agent := startAgent(t, srv.URL)
			s := subscribe(t, srv.URL, media, framework("Aurora"))

			offers := s.next(scheduler.Event_OFFERS).Offers.Offers
			if len(offers) != 1 || offers[0].Hostname != "agent1.local" || offers[0].AgentID.Value != agent.id {
				t.Fatalf("offers %v", offers)
			}
			cpus, _ := resources.CPUs(offers[0].Resources...)
			if cpus != 4 {
				t.Fatalf("offered cpus %v", cpus)
			}
			task := commandTask("hello-1", &offers[0], 1, 128)
			// refuse_seconds=0: the rest may come back at once (without
			// filters it would be refused for DeclineDelay, as in Mesos).
			s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offers[0].ID)).With(calls.RefuseSeconds(0)))

			running := s.next(scheduler.Event_UPDATE).Update.Status
			if running.GetState() != mesos.TASK_RUNNING || running.TaskID.Value != "hello-1" || running.UUID == nil {
				t.Fatalf("update %v", running)
			}
			// The rest of the agent (3 cpus) is offered right away.
			if rest := s.next(scheduler.Event_OFFERS).Offers.Offers; len(rest) != 1 {
				t.Fatalf("rest %v", rest)
			} else if c, _ := resources.CPUs(rest[0].Resources...); c != 3 {
				t.Fatalf("re-offered cpus %v", c)
			}
			s.ack(running)
			finished := s.next(scheduler.Event_UPDATE).Update.Status
			if finished.GetState() != mesos.TASK_FINISHED {
				t.Fatalf("update %v", finished)
			}
			s.ack(finished)
			deadline := time.Now().Add(5 * time.Second)
			for agent.ackCount("hello-1") != 2 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := agent.ackCount("hello-1"); n != 2 {
				t.Fatalf("agent saw %d acknowledgements", n)
			}
		})
	}
}

func TestStateShowsFrameworkTasksAndAgents(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	task := commandTask("sleep-1", &offer, 1, 64)
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)))
	s.next(scheduler.Event_UPDATE)

	resp, err := http.Get(srv.URL + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Version    string `json:"version"`
		Leader     string `json:"leader"`
		Frameworks []struct {
			ID    string `json:"id"`
			Name  string `json:"name"`
			Tasks []struct {
				ID        string `json:"id"`
				State     string `json:"state"`
				SlaveID   string `json:"slave_id"`
				Discovery struct {
					Name  string `json:"name"`
					Ports struct {
						Ports []struct {
							Number int    `json:"number"`
							Name   string `json:"name"`
						} `json:"ports"`
					} `json:"ports"`
				} `json:"discovery"`
			} `json:"tasks"`
		} `json:"frameworks"`
		Slaves []struct {
			ID         string            `json:"id"`
			Hostname   string            `json:"hostname"`
			Attributes map[string]string `json:"attributes"`
			Resources  map[string]any    `json:"resources"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Version != master.Version || len(st.Frameworks) != 1 || st.Frameworks[0].Name != "Aurora" || st.Frameworks[0].ID != s.fwID {
		t.Fatalf("state %+v", st)
	}
	tk := st.Frameworks[0].Tasks
	if len(tk) != 1 || tk[0].ID != "sleep-1" || tk[0].State != "TASK_RUNNING" || tk[0].SlaveID != agent.id ||
		tk[0].Discovery.Name != "hello.devel.www-data" || tk[0].Discovery.Ports.Ports[0].Number != 31001 {
		t.Fatalf("tasks %+v", tk)
	}
	if len(st.Slaves) != 1 || st.Slaves[0].Hostname != "agent1.local" || st.Slaves[0].Attributes["rack"] != "r1" ||
		st.Slaves[0].Resources["ports"] != "[31000-32000]" || st.Slaves[0].Resources["cpus"] != 4.0 {
		t.Fatalf("slaves %+v", st.Slaves)
	}
	for _, path := range []string{"/state", "/state.json", "/master/state.json", "/master/health", "/version", "/metrics/snapshot"} {
		r, err := http.Get(srv.URL + path)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, r.Status, err)
		}
		r.Body.Close()
	}
}

func TestKillAndReconcile(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-2", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.ack(s.next(scheduler.Event_UPDATE).Update.Status)

	// Explicit reconciliation: a known task and an unknown one. The answers carry no uuid.
	s.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleep-2": agent.id, "ghost": ""})))
	got := map[string]mesos.TaskStatus{}
	for range 2 {
		st := s.next(scheduler.Event_UPDATE).Update.Status
		got[st.TaskID.Value] = st
	}
	if st := got["sleep-2"]; st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION || st.UUID != nil {
		t.Fatalf("reconcile known: %v", st)
	}
	if st := got["ghost"]; st.GetState() != mesos.TASK_LOST {
		t.Fatalf("reconcile unknown: %v", st)
	}
	// Implicit reconciliation: all of the framework's tasks.
	s.mustCall(calls.Reconcile())
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-2" {
		t.Fatalf("implicit: %v", st)
	}

	s.mustCall(calls.Kill("sleep-2", agent.id))
	if st := s.next(scheduler.Event_UPDATE).Update.Status; st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %v", st)
	}
}

func TestInvalidTasksAndOffers(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	big := commandTask("too-big", &offer, 64, 64)
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(big)}.WithOffers(offer.ID)))
	st := s.next(scheduler.Event_UPDATE).Update.Status
	if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), "more resources") {
		t.Fatalf("oversized task: %v", st)
	}
	// The offer is spent: launching on it again is dropped.
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("late", &offer, 1, 64))}.WithOffers(offer.ID)))
	st = s.next(scheduler.Event_UPDATE).Update.Status
	if st.GetState() != mesos.TASK_DROPPED || st.GetReason() != mesos.REASON_INVALID_OFFERS {
		t.Fatalf("stale offer: %v", st)
	}
}

func TestDeclineFilter(t *testing.T) {
	_, srv := startMaster(t, master.Config{DeclineDelay: 20 * time.Millisecond})
	startAgent(t, srv.URL)
	s := subscribe(t, srv.URL, "json", framework("Aurora"))
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]

	// Without filters, declined resources come back at once (dev profile).
	start := time.Now()
	s.mustCall(calls.Decline(offer.ID))
	offer = s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	quick := time.Since(start)

	// With refuse_seconds they stay away for that long.
	start = time.Now()
	s.mustCall(calls.Decline(offer.ID).With(calls.RefuseSeconds(time.Second)))
	offer = s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	if d := time.Since(start); d < time.Second {
		t.Fatalf("re-offered after %s despite refuse_seconds=1 (unfiltered: %s)", d, quick)
	}

	// REVIVE clears a long filter at once.
	s.mustCall(calls.Decline(offer.ID).With(calls.RefuseSeconds(time.Hour)))
	s.mustCall(calls.Revive())
	s.next(scheduler.Event_OFFERS)
}

func TestFailover(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	agent := startAgent(t, srv.URL)
	info := framework("Aurora")
	info.FailoverTimeout = floatp(60)
	s := subscribe(t, srv.URL, "json", info)
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-3", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.next(scheduler.Event_UPDATE)

	// A new scheduler instance takes over with the same framework id.
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribe(t, srv.URL, "json", info)
	if s2.fwID != s.fwID {
		t.Fatalf("failover got a new id %s", s2.fwID)
	}
	if ev := s.next(scheduler.Event_ERROR); !strings.Contains(ev.Error.Message, "failed over") {
		t.Fatalf("old stream: %v", ev)
	}
	// The task survived, and the old stream id is no longer accepted.
	s2.mustCall(calls.Reconcile())
	if st := s2.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-3" || st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("after failover: %v", st)
	}
	_ = agent
	// SUPPRESS stops offers; nothing arrives until REVIVE.
}

func TestFailoverTimeoutRemovesFramework(t *testing.T) {
	m, srv := startMaster(t, master.Config{})
	startAgent(t, srv.URL)
	info := framework("Shortlived")
	info.FailoverTimeout = floatp(0.2)
	s := subscribe(t, srv.URL, "json", info)
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(commandTask("sleep-4", &offer, 1, 64))}.WithOffers(offer.ID)))
	s.next(scheduler.Event_UPDATE)
	s.cancel() // the scheduler goes away
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := m.State()
		if len(st["frameworks"].([]map[string]any)) == 0 && len(st["completed_frameworks"].([]map[string]any)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("framework not removed after its failover timeout: %v", st["frameworks"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Re-subscribing with the removed id is refused.
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	body, _ := json.Marshal(calls.Subscribe(info).With(calls.SubscribeTo(s.fwID)))
	resp, err := http.Post(srv.URL+"/api/v1/scheduler", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("re-subscribe of a removed framework: %s", resp.Status)
	}
}

func floatp(f float64) *float64 { return &f }

func TestBadCalls(t *testing.T) {
	_, srv := startMaster(t, master.Config{})
	post := func(ct, body string, hdr ...string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/scheduler", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name string
		ct   string
		body string
		hdr  []string
		want int
	}{
		{"wrong media type", "text/plain", `{}`, nil, 415},
		{"malformed json", "application/json", `{"type":`, nil, 400},
		{"malformed protobuf", "application/x-protobuf", "\xff\xff\xff", nil, 400},
		{"no type", "application/json", `{}`, nil, 400},
		{"unknown type", "application/json", `{"type":"NOPE"}`, nil, 400},
		{"subscribe without info", "application/json", `{"type":"SUBSCRIBE"}`, nil, 400},
		{"call without framework", "application/json", `{"type":"REVIVE"}`, nil, 400},
		{"unknown framework", "application/json", `{"type":"REVIVE","framework_id":{"value":"nope"}}`, nil, 403},
		{"bad accept", "application/json", `{"type":"REVIVE"}`, []string{"Accept", "text/html"}, 406},
	}
	for _, tt := range tests {
		if got := post(tt.ct, tt.body, tt.hdr...); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	if r, _ := http.Get(srv.URL + "/api/v1/scheduler"); r.StatusCode != 405 {
		t.Errorf("GET: %d", r.StatusCode)
	}
}

// TestAgentRemoval: an agent that stays disconnected past the removal
// timeout has its tasks reported TASK_UNREACHABLE to a partition-aware
// framework and TASK_LOST to the others, with REASON_AGENT_REMOVED.
func TestAgentRemoval(t *testing.T) {
	_, srv := startMaster(t, master.Config{AgentRemovalTimeout: 300 * time.Millisecond})
	agent := startAgent(t, srv.URL)
	aware := framework("aware")
	aware.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}
	frameworks := map[string]*sched{}
	launched := map[string]mesos.TaskInfo{}
	for _, f := range []struct {
		id   string
		info *mesos.FrameworkInfo
	}{{"sleep-aware", aware}, {"sleep-plain", framework("plain")}} {
		s := subscribe(t, srv.URL, "json", f.info)
		frameworks[f.id] = s
		offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
		launched[f.id] = commandTask(f.id, &offer, 1, 64)
		s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(launched[f.id])}.WithOffers(offer.ID)).With(calls.RefuseSeconds(0)))
		st := s.next(scheduler.Event_UPDATE).Update.Status
		if st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("%s: %s", f.id, st.GetState())
		}
		s.ack(st)
		// The rest of the agent comes back (refuse_seconds=0) and is refused.
		rest := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
		s.mustCall(calls.Decline(rest.ID).With(calls.RefuseSeconds(time.Hour)))
	}
	agent.cancel() // the agent goes away and does not come back
	for id, want := range map[string]mesos.TaskState{"sleep-aware": mesos.TASK_UNREACHABLE, "sleep-plain": mesos.TASK_LOST} {
		st := frameworks[id].next(scheduler.Event_UPDATE).Update.Status
		if st.TaskID.Value != id || st.GetState() != want || st.GetReason() != mesos.REASON_AGENT_REMOVED || st.GetSource() != mesos.SOURCE_MASTER ||
			!strings.Contains(st.GetMessage(), "agent1.local is unreachable") {
			t.Errorf("%s: %s %s %s %q; want %s", id, st.TaskID.Value, st.GetState(), st.GetReason(), st.GetMessage(), want)
		}
		// Each framework hears of the lost agent: FAILURE with only its id.
		if f := frameworks[id].next(scheduler.Event_FAILURE).Failure; f.GetAgentID().GetValue() != agent.id || f.ExecutorID != nil || f.Status != nil {
			t.Errorf("%s: failure %v", id, f)
		}
	}

	// The agent comes back with the partition-aware framework's task still
	// running: reconciliation reports it RUNNING again, not UNREACHABLE.
	sub := agentSubscribe()
	sub.Info.ID = &mesos.AgentID{Value: agent.id}
	aw := frameworks["sleep-aware"]
	sub.Tasks = []agentproto.Task{{FrameworkID: aw.fwID, Info: launched["sleep-aware"], State: mesos.TASK_RUNNING}}
	startAgentWith(t, srv.URL, sub)
	aw.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleep-aware": agent.id})))
	if st := aw.next(scheduler.Event_UPDATE).Update.Status; st.TaskID.Value != "sleep-aware" || st.GetState() != mesos.TASK_RUNNING {
		t.Errorf("after the agent came back, reconcile says %s %s", st.TaskID.Value, st.GetState())
	}
}
