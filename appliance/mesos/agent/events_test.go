package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	ecalls "github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// echoExecutor is a third-party executor on mesos-go's executor client, in
// the codec that $ECHO_CODEC names. It runs any number of tasks: each goes
// RUNNING at once, except one whose data is "silent", which gets no update
// at all. Framework messages steer it:
//
//	exit               exit with status 7, leaving its tasks to the agent
//	resubscribe        subscribe again, listing every task it holds
//	resubscribe-forget subscribe again, listing none
//	anything else      answered with the message "echo: " + it
//
// After a re-subscription it sends the message "resubscribed". SHUTDOWN
// kills its tasks (TASK_KILLED) and it exits 0.
func echoExecutor() {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	media := codecs.MediaTypeJSON
	if os.Getenv("ECHO_CODEC") == "protobuf" {
		media = codecs.MediaTypeProtobuf
	}
	u := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cli := httpcli.New(httpcli.Endpoint(u.String()), httpcli.Codec(codecs.ByMediaType[media]))
	opts := executor.CallOptions{ecalls.Framework(cfg.FrameworkID), ecalls.Executor(cfg.ExecutorID)}
	send := ecalls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	subscriber := ecalls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	ctx := context.Background()
	call := func(c *executor.Call) {
		if err := ecalls.SendNoData(ctx, send, ecalls.NonStreaming(c)); err != nil {
			fmt.Fprintln(os.Stderr, "call:", err)
		}
	}
	update := func(id mesos.TaskID, s mesos.TaskState) {
		call(ecalls.Update(mesos.TaskStatus{TaskID: id, State: s.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: []byte(id.Value + s.String())}))
	}
	var tasks []mesos.TaskInfo
	listTasks, resubscribed := true, false
	for {
		var unacked []mesos.TaskInfo
		if listTasks {
			unacked = tasks
		}
		resp, err := subscriber.Send(ctx, ecalls.NonStreaming(ecalls.Subscribe(unacked, nil)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "subscribe:", err)
			os.Exit(1)
		}
		again := false
		for !again {
			var ev executor.Event
			if err := resp.Decode(&ev); err != nil {
				os.Exit(0) // the agent ended the stream
			}
			switch ev.Type {
			case executor.Event_SUBSCRIBED:
				if resubscribed {
					call(ecalls.Message([]byte("resubscribed")))
				}
			case executor.Event_LAUNCH:
				tasks = append(tasks, ev.Launch.Task)
				if string(ev.Launch.Task.Data) != "silent" {
					update(ev.Launch.Task.TaskID, mesos.TASK_RUNNING)
				}
			case executor.Event_KILL:
				update(ev.Kill.TaskID, mesos.TASK_KILLED)
			case executor.Event_MESSAGE:
				switch d := string(ev.Message.Data); d {
				case "exit":
					os.Exit(7)
				case "resubscribe", "resubscribe-forget":
					listTasks, resubscribed, again = d == "resubscribe", true, true
				default:
					call(ecalls.Message([]byte("echo: " + d)))
				}
			case executor.Event_SHUTDOWN:
				for _, t := range tasks {
					update(t.TaskID, mesos.TASK_KILLED)
				}
				os.Exit(0)
			}
		}
		resp.Close()
	}
}

// echoTasks builds tasks that share one echo executor.
func echoTasks(codec string, ids ...string) []func(mesos.Offer) mesos.TaskInfo {
	self, _ := os.Executable()
	ex := &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: "echo"},
		Command: &mesos.CommandInfo{Value: &self, Arguments: []string{self, "echo-executor"}, Shell: proto.Bool(false),
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "ECHO_CODEC", Value: proto.String(codec)}}}},
		Resources: []mesos.Resource{resources.NewCPUs(0.05).Resource, resources.NewMemory(16).Resource},
	}
	var out []func(mesos.Offer) mesos.TaskInfo
	for _, id := range ids {
		out = append(out, func(o mesos.Offer) mesos.TaskInfo {
			t := mesos.TaskInfo{
				Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Executor: ex,
				Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
			}
			if strings.HasPrefix(id, "silent") {
				t.Data = []byte("silent")
			}
			return t
		})
	}
	return out
}

func (s *sched) mustCall(c *scheduler.Call) {
	s.t.Helper()
	resp, err := s.caller.Call(context.Background(), c.With(calls.Framework(s.fwID)))
	if err != nil {
		s.t.Fatalf("%s: %v", c.GetType(), err)
	}
	closeResp(resp)
}

// message returns the next framework message.
func (s *sched) message() *scheduler.Event_Message {
	s.t.Helper()
	return s.next(scheduler.Event_MESSAGE).Message
}

// TestEchoExecutorMessagesShutdownAndFailure runs a custom executor with two
// tasks, end to end in each codec (scheduler and executor alike): a
// framework message reaches it and its answer comes back with the agent and
// executor ids; then it ends, by the framework's SHUTDOWN (its tasks
// KILLED) or by crashing (its tasks FAILED), and the framework gets FAILURE
// with the executor's wait status.
func TestEchoExecutorMessagesShutdownAndFailure(t *testing.T) {
	for _, tt := range []struct {
		name        string
		media       encoding.MediaType
		end         string // "shutdown" or the message "exit"
		wantState   mesos.TaskState
		wantReason  *mesos.TaskStatus_Reason // nil: any
		wantWaitSts int32
	}{
		{"json/shutdown", codecs.MediaTypeJSON, "shutdown", mesos.TASK_KILLED, nil, 0},
		{"protobuf/crash", codecs.MediaTypeProtobuf, "exit", mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED.Enum(), 7 << 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A grace period long enough for the executor to exit by itself,
			// even on a loaded machine: its own exit status is the point.
			c := startMasterAndAgent(t, func(cfg *agent.Config) { cfg.ExecutorShutdownGrace = 30 * time.Second })
			s := subscribeCodec(t, c.masterURL, tt.media)
			codec := map[encoding.MediaType]string{codecs.MediaTypeJSON: "json", codecs.MediaTypeProtobuf: "protobuf"}[tt.media]
			s.launch(echoTasks(codec, "e1", "e2")...)
			var agentID string
			for _, id := range []string{"e1", "e2"} {
				st := s.updateFor(id)
				if st.GetState() != mesos.TASK_RUNNING {
					t.Fatalf("%s: %s", id, st.GetState())
				}
				agentID = st.GetAgentID().GetValue()
			}

			s.mustCall(calls.Message(agentID, "echo", []byte("ping")))
			if m := s.message(); string(m.Data) != "echo: ping" || m.AgentID.Value != agentID || m.ExecutorID.Value != "echo" {
				t.Fatalf("message %v", m)
			}

			if tt.end == "shutdown" {
				s.mustCall(calls.Shutdown("echo", agentID))
			} else {
				s.mustCall(calls.Message(agentID, "echo", []byte(tt.end)))
			}
			for _, id := range []string{"e1", "e2"} {
				st := s.updateFor(id)
				if st.GetState() != tt.wantState || (tt.wantReason != nil && st.GetReason() != *tt.wantReason) {
					t.Errorf("%s: %s %s %q", id, st.GetState(), st.GetReason(), st.GetMessage())
				}
			}
			f := s.next(scheduler.Event_FAILURE).Failure
			if f.GetAgentID().GetValue() != agentID || f.GetExecutorID().GetValue() != "echo" || f.Status == nil || f.GetStatus() != tt.wantWaitSts {
				t.Fatalf("failure %v, want status %d", f, tt.wantWaitSts)
			}
		})
	}
}

// The built-in command executor is the agent's own: its end is no FAILURE,
// as in Mesos. A custom executor's FAILURE, queued after it on the same
// channel to the master, shows that none was sent.
func TestCommandExecutorNoFailure(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("short", "true"))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		if st := c.sched.updateFor("short"); st.GetState() != want {
			t.Fatalf("short: %s, want %s", st.GetState(), want)
		}
	}
	waitFor(t, "short's executor to end", func() bool { return executorDone(c.agent, "short") })
	c.sched.launch(echoTasks("json", "marker")...)
	st := c.sched.updateFor("marker")
	c.sched.mustCall(calls.Message(st.GetAgentID().GetValue(), "echo", []byte("exit")))
	if f := c.sched.next(scheduler.Event_FAILURE).Failure; f.GetExecutorID().GetValue() != "echo" {
		t.Fatalf("FAILURE for a command executor: %v", f)
	}
}

// executorDone reports whether the agent has retired an executor.
func executorDone(a *agent.Agent, id string) bool {
	for _, fw := range a.State()["frameworks"].([]map[string]any) {
		for _, ex := range fw["completed_executors"].([]map[string]any) {
			if ex["id"] == id {
				return true
			}
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agentTask finds a task in the agent's state: its state and whether it is
// among the executor's completed tasks.
func agentTask(a *agent.Agent, id string) (state string, completed bool) {
	for _, fw := range a.State()["frameworks"].([]map[string]any) {
		for _, key := range []string{"executors", "completed_executors"} {
			for _, ex := range fw[key].([]map[string]any) {
				for _, list := range []string{"tasks", "queued_tasks", "completed_tasks"} {
					for _, t := range ex[list].([]map[string]any) {
						if t["id"] == id {
							return t["state"].(string), list == "completed_tasks"
						}
					}
				}
			}
		}
	}
	return "", false
}

// TestResubscribeUnacknowledgedTasks: when an executor subscribes again, a
// task the agent sent it that has had no update and that it does not list
// in unacknowledged_tasks was lost on the way; the agent reports it
// TASK_LOST (TASK_DROPPED to a partition-aware framework) with
// REASON_AGENT_RESTARTED, as Mesos does. A listed task stays STAGING, and a
// task with updates is left alone.
func TestResubscribeUnacknowledgedTasks(t *testing.T) {
	for _, tt := range []struct {
		name           string
		partitionAware bool
		message        string
		want           mesos.TaskState // TASK_STAGING: not reported
	}{
		{"unlisted", false, "resubscribe-forget", mesos.TASK_LOST},
		{"unlisted/partition-aware", true, "resubscribe-forget", mesos.TASK_DROPPED},
		{"listed", false, "resubscribe", mesos.TASK_STAGING},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startMasterAndAgent(t)
			s := subscribe(t, c.masterURL, func(fw *mesos.FrameworkInfo) {
				if tt.partitionAware {
					fw.Capabilities = []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}}
				}
			})
			s.launch(echoTasks("json", "busy", "silent-1")...)
			st := s.updateFor("busy")
			agentID := st.GetAgentID().GetValue()
			s.mustCall(calls.Message(agentID, "echo", []byte(tt.message)))
			if m := s.message(); string(m.Data) != "resubscribed" {
				t.Fatalf("message %q", m.Data)
			}
			// The agent judged the task before it answered the new
			// subscription, so its state is settled by now.
			state, completed := agentTask(c.agent, "silent-1")
			if state != tt.want.String() || completed != (tt.want != mesos.TASK_STAGING) {
				t.Fatalf("agent has silent-1 %s (completed %v), want %s", state, completed, tt.want)
			}
			if state, _ := agentTask(c.agent, "busy"); state != "TASK_RUNNING" {
				t.Fatalf("busy: %s", state)
			}
			if tt.want == mesos.TASK_STAGING {
				return
			}
			st = s.updateFor("silent-1")
			if st.GetState() != tt.want || st.GetReason() != mesos.REASON_AGENT_RESTARTED || st.GetSource() != mesos.SOURCE_AGENT ||
				st.GetMessage() != "Task launched during agent restart" || st.GetExecutorID().GetValue() != "echo" {
				t.Fatalf("silent-1: %s %s %s %q", st.GetState(), st.GetReason(), st.GetSource(), st.GetMessage())
			}
		})
	}
}

// TestStatusUpdateResentUntilAcknowledged: the agent resends a task's
// oldest unacknowledged update (same uuid) and holds back the next, until
// the framework acknowledges it; once all are acknowledged none comes again.
func TestStatusUpdateResentUntilAcknowledged(t *testing.T) {
	const retry = 50 * time.Millisecond
	c := startMasterAndAgent(t, func(cfg *agent.Config) { cfg.StatusUpdateRetryInterval = retry })
	s := subscribe(t, c.masterURL)
	s.launch(shellTask("retried", "true"))
	var first *mesos.TaskStatus
	ack := func(st mesos.TaskStatus) {
		s.mustCall(calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID))
	}
	// raw events: the helpers would acknowledge them.
	next := func() mesos.TaskStatus {
		t.Helper()
		for {
			select {
			case ev, ok := <-s.events:
				if !ok {
					t.Fatal("stream closed")
				}
				if ev.Type == scheduler.Event_UPDATE && ev.Update.Status.TaskID.Value == "retried" {
					return ev.Update.Status
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no update within 20s")
			}
		}
	}
	for deliveries := 0; deliveries < 3; deliveries++ {
		st := next()
		if first == nil {
			first = &st
		}
		if st.GetState() != mesos.TASK_STARTING || string(st.UUID) != string(first.UUID) {
			t.Fatalf("delivery %d: %s %x, want TASK_STARTING %x again", deliveries+1, st.GetState(), st.UUID, first.UUID)
		}
	}
	ack(*first)
	seen := map[string]bool{string(first.UUID): true}
	for _, want := range []mesos.TaskState{mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		st := next()
		for seen[string(st.UUID)] { // a resend that crossed the acknowledgement
			st = next()
		}
		if st.GetState() != want {
			t.Fatalf("got %s, want %s", st.GetState(), want)
		}
		seen[string(st.UUID)] = true
		ack(st)
	}
	// Nothing is pending once the agent has processed the last ack; then
	// several retry intervals pass without a resend.
	agentID := c.agent.State()["id"].(string)
	pending := filepath.Join(c.workDir, "meta", "slaves", agentID, "updates.json")
	waitFor(t, "no pending updates", func() bool {
		b, _ := os.ReadFile(pending)
		var all []any
		return json.Unmarshal(b, &all) == nil && len(all) == 0
	})
	// One resend of an acknowledged update may still be on its way (the
	// agent sends outside its lock, so a resend can cross the last
	// acknowledgement); a second one would be a resend after the
	// acknowledgement was processed.
	quiet := time.After(10 * retry)
	late := map[string]int{}
	for {
		select {
		case ev := <-s.events:
			if ev.Type != scheduler.Event_UPDATE {
				continue
			}
			id := string(ev.Update.Status.UUID)
			if late[id]++; !seen[id] || late[id] > 1 {
				t.Fatalf("update after its acknowledgement: %s (delivery %d after the ack)", ev.Update.Status.GetState(), late[id])
			}
		case <-quiet:
			return
		}
	}
}

// TestFrameworkRemovalKillsTasks: a TEARDOWN, or a scheduler gone past its
// failover timeout, removes the framework and kills its tasks: their
// executors end, the master records them TASK_KILLED, and the agent keeps
// no update for a framework that is gone.
func TestFrameworkRemovalKillsTasks(t *testing.T) {
	for _, tt := range []struct {
		name   string
		remove func(s *sched)
	}{
		{"teardown", func(s *sched) { s.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN}) }},
		{"failover timeout", func(s *sched) { s.cancel() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := startMasterAndAgent(t)
			s := subscribe(t, c.masterURL, func(fw *mesos.FrameworkInfo) { fw.FailoverTimeout = proto.Float64(0.2) })
			task := "doomed-" + strings.ReplaceAll(tt.name, " ", "-")
			s.launch(shellTask(task, "sleep 300"))
			for range 2 {
				s.updateFor(task)
			}
			if len(executorPIDs(task)) != 1 {
				t.Fatalf("executor of %s not running", task)
			}
			tt.remove(s)
			waitFor(t, "the framework to be removed", func() bool {
				return len(c.master.State()["completed_frameworks"].([]map[string]any)) == 1
			})
			done := c.master.State()["completed_frameworks"].([]map[string]any)[0]
			if tasks := done["completed_tasks"].([]map[string]any); len(tasks) != 1 || tasks[0]["state"] != "TASK_KILLED" {
				t.Fatalf("completed tasks %v", tasks)
			}
			waitFor(t, "the task's executor to end", func() bool { return len(executorPIDs(task)) == 0 })
			// Retired only after its tasks' last updates went through.
			waitFor(t, "the agent to retire the executor", func() bool { return executorDone(c.agent, task) })
			if state, completed := agentTask(c.agent, task); !completed || state != "TASK_KILLED" {
				t.Fatalf("the agent has %s %s (completed %v)", task, state, completed)
			}
			pending := filepath.Join(c.workDir, "meta", "slaves", c.agent.State()["id"].(string), "updates.json")
			b, _ := os.ReadFile(pending)
			if strings.Contains(string(b), s.fwID) {
				t.Fatalf("updates kept for a removed framework: %s", b)
			}
		})
	}
}

// TestAgentReregistersAfterMasterRestart: the master dies and a new one
// starts on the same address, knowing nothing. The agent re-registers with
// its id and its running task; the framework re-subscribes with its id,
// finds the task by reconciliation, and can still kill it.
func TestAgentReregistersAfterMasterRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) (*master.Master, *http.Server) {
		m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: addr, AgentSecret: testAgentSecret, RootSubmissions: true})
		srv := &http.Server{Handler: m.Handler()}
		go srv.Serve(ln)
		return m, srv
	}
	_, srv1 := serve(ln)
	t.Cleanup(func() { srv1.Close() })
	startAgent(t, "http://"+addr)
	fwInfo := func(fw *mesos.FrameworkInfo) {
		fw.Checkpoint, fw.FailoverTimeout = proto.Bool(true), proto.Float64(3600)
	}
	s := subscribe(t, "http://"+addr, fwInfo)
	s.launch(shellTask("survivor", "sleep 300"))
	st := s.updateFor("survivor")
	for st.GetState() != mesos.TASK_RUNNING {
		st = s.updateFor("survivor")
	}
	agentID, fwID := st.GetAgentID().GetValue(), s.fwID

	srv1.Close() // the master dies with every connection
	var ln2 net.Listener
	waitFor(t, "the address to be free", func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	m2, srv2 := serve(ln2)
	t.Cleanup(func() { srv2.Close() })

	waitFor(t, "the agent to re-register with its task", func() bool {
		st := m2.State()
		slaves, fws := st["slaves"].([]map[string]any), st["frameworks"].([]map[string]any)
		return len(slaves) == 1 && len(fws) == 1 && len(fws[0]["tasks"].([]map[string]any)) == 1
	})
	state := m2.State()
	if id := state["slaves"].([]map[string]any)[0]["id"]; id != agentID {
		t.Fatalf("agent re-registered as %v, was %s", id, agentID)
	}
	fw := state["frameworks"].([]map[string]any)[0]
	task := fw["tasks"].([]map[string]any)[0]
	if fw["id"] != fwID || fw["recovered"] != true || task["id"] != "survivor" || task["state"] != "TASK_RUNNING" || task["slave_id"] != agentID {
		t.Fatalf("framework %v %v %v, task %v", fw["id"], fw["recovered"], fw["connected"], task)
	}

	s2 := subscribe(t, "http://"+addr, func(fw *mesos.FrameworkInfo) {
		fwInfo(fw)
		fw.ID = &mesos.FrameworkID{Value: fwID}
	})
	s2.mustCall(calls.Reconcile())
	if st := s2.updateFor("survivor"); st.GetState() != mesos.TASK_RUNNING || st.GetAgentID().GetValue() != agentID {
		t.Fatalf("reconciled %s on %s", st.GetState(), st.GetAgentID().GetValue())
	}
	killTask(t, s2, "survivor")
	// A TASK_RUNNING the old master never acknowledged may still arrive
	// (the agent resends it to the new master until it is), before the kill.
	st = s2.updateFor("survivor")
	for st.GetState() == mesos.TASK_RUNNING {
		st = s2.updateFor("survivor")
	}
	if st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill through the new master: %s", st.GetState())
	}
}

// TestExecutorCallErrors: the agent answers bad executor calls with HTTP
// status codes, as Mesos does (it sends no ERROR event): calls for an
// unknown framework or executor are 400, calls from an executor that has
// not subscribed are 403, and an executor that subscribes while it is
// being shut down gets a stream that carries SHUTDOWN and ends.
func TestExecutorCallErrors(t *testing.T) {
	c := startMasterAndAgent(t, func(cfg *agent.Config) { cfg.ExecutorShutdownGrace = time.Minute })
	s := subscribe(t, c.masterURL)
	// An executor that never subscribes: the test speaks for it.
	s.launch(func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: "idle", TaskID: mesos.TaskID{Value: "idle"}, AgentID: o.AgentID,
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
			Executor: &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "idle-ex"},
				Command: &mesos.CommandInfo{Value: proto.String("exec sleep 300")}},
		}
	})
	t.Cleanup(func() {
		for _, pid := range processesWithEnv(func(kv string) bool { return kv == "MESOS_EXECUTOR_ID=idle-ex" }) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitFor(t, "the executor to start", func() bool {
		return len(processesWithEnv(func(kv string) bool { return kv == "MESOS_EXECUTOR_ID=idle-ex" })) > 0
	})
	cli := httpcli.New(httpcli.Endpoint(c.agentURL+"/api/v1/executor"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]))
	sender := func(fw, ex string) ecalls.Sender {
		return ecalls.SenderWith(httpexec.NewSender(cli.Send), ecalls.Framework(fw), ecalls.Executor(ex))
	}
	status := mesos.TaskStatus{TaskID: mesos.TaskID{Value: "idle"}, State: mesos.TASK_RUNNING.Enum(), UUID: []byte("u1")}
	for _, tt := range []struct {
		name     string
		fw, ex   string
		call     *executor.Call
		wantCode int
	}{
		{"update from an unknown framework", "nope", "idle-ex", ecalls.Update(status), http.StatusBadRequest},
		{"update from an unknown executor", s.fwID, "nope", ecalls.Update(status), http.StatusBadRequest},
		{"update before subscribing", s.fwID, "idle-ex", ecalls.Update(status), http.StatusForbidden},
		{"message before subscribing", s.fwID, "idle-ex", ecalls.Message([]byte("hi")), http.StatusForbidden},
	} {
		err := ecalls.SendNoData(context.Background(), sender(tt.fw, tt.ex), ecalls.NonStreaming(tt.call))
		if !apierrors.Code(tt.wantCode).Matches(err) {
			t.Errorf("%s: %v, want %d", tt.name, err, tt.wantCode)
		}
	}

	agentID := c.agent.State()["id"].(string)
	s.mustCall(calls.Shutdown("idle-ex", agentID))
	subscriber := ecalls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), ecalls.Framework(s.fwID), ecalls.Executor("idle-ex"))
	waitFor(t, "a SUBSCRIBE answered with SHUTDOWN", func() bool {
		resp, err := subscriber.Send(context.Background(), ecalls.NonStreaming(ecalls.Subscribe(nil, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Close()
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == executor.Event_SUBSCRIBED {
			return false // the agent has not had the SHUTDOWN yet
		}
		if ev.Type != executor.Event_SHUTDOWN {
			t.Fatalf("first event %s", ev.Type)
		}
		if err := resp.Decode(&ev); err == nil {
			t.Fatalf("the stream goes on after SHUTDOWN: %s", ev.Type)
		}
		return true
	})
}
