package master

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/limits"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// The agent ↔ master protocol is internal to aurorabox (a real Mesos agent
// speaks libprocess instead). An agent POSTs AgentSubscribe to
// AgentSubscribePath and reads a RecordIO stream of JSON AgentCommands for as
// long as it is connected; it reports task status with AgentUpdate POSTs to
// AgentUpdatePath and resends each until an ACKNOWLEDGE command arrives.
// What its executors send their framework (AgentMessage) and the end of an
// executor (AgentExecutorExited) go to AgentMessagePath and
// AgentExecutorExitedPath, once: like Mesos, neither is delivered reliably.
// The agent answers each HEARTBEAT command (the master's ping) with an
// AgentPong POST to AgentPongPath; the master drops the stream of an agent
// that stops answering (Config.MaxAgentPingTimeouts), and the agent, once
// it reads the end of its stream, re-registers.
const (
	AgentSubscribePath      = "/internal/v1/agent/subscribe"
	AgentUpdatePath         = "/internal/v1/agent/update"
	AgentMessagePath        = "/internal/v1/agent/message"
	AgentExecutorExitedPath = "/internal/v1/agent/executor_exited"
	AgentPongPath           = "/internal/v1/agent/pong"
)

// AgentPong answers the master's ping (a HEARTBEAT command).
type AgentPong struct {
	AgentID string `json:"agent_id"`
}

// AgentSubscribe registers (or re-registers, with info.id set) an agent.
// A re-registering agent reports the frameworks and the live tasks it
// runs, as a Mesos agent's ReregisterSlaveMessage does, so that a master
// that restarted learns them again.
type AgentSubscribe struct {
	Info       mesos.AgentInfo       `json:"agent_info"`
	PID        string                `json:"pid"` // slave(1)@host:port
	Frameworks []mesos.FrameworkInfo `json:"frameworks,omitempty"`
	Tasks      []AgentTask           `json:"tasks,omitempty"`
}

// AgentTask is a task an agent runs, as the master launched it, with its
// latest state on the agent.
type AgentTask struct {
	FrameworkID string          `json:"framework_id"`
	Info        mesos.TaskInfo  `json:"task_info"`
	State       mesos.TaskState `json:"state"`
}

// AgentMessage carries an executor's MESSAGE call to its framework.
type AgentMessage struct {
	AgentID     string `json:"agent_id"`
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Data        []byte `json:"data"`
}

// AgentExecutorExited reports that a framework's executor ended. Status is
// the wait status (as waitpid's stat_loc), when the agent knows it.
type AgentExecutorExited struct {
	AgentID     string `json:"agent_id"`
	FrameworkID string `json:"framework_id"`
	ExecutorID  string `json:"executor_id"`
	Status      *int32 `json:"status,omitempty"`
}

// Agent command types.
const (
	CmdRegistered        = "REGISTERED" // first command; AgentID is the assigned id
	CmdLaunch            = "LAUNCH"
	CmdKill              = "KILL"
	CmdAcknowledge       = "ACKNOWLEDGE"
	CmdShutdownFramework = "SHUTDOWN_FRAMEWORK"
	CmdShutdownExecutor  = "SHUTDOWN_EXECUTOR"
	CmdMessage           = "MESSAGE"   // a framework's message for one of its executors
	CmdHeartbeat         = "HEARTBEAT" // a ping: the agent answers with an AgentPong
)

// AgentCommand is one record of the agent's command stream.
type AgentCommand struct {
	Type        string               `json:"type"`
	AgentID     string               `json:"agent_id,omitempty"`
	Framework   *mesos.FrameworkInfo `json:"framework,omitempty"`
	FrameworkID string               `json:"framework_id,omitempty"`
	Tasks       []mesos.TaskInfo     `json:"tasks,omitempty"`
	TaskID      string               `json:"task_id,omitempty"`
	UUID        []byte               `json:"uuid,omitempty"`
	ExecutorID  string               `json:"executor_id,omitempty"`
	Data        []byte               `json:"data,omitempty"`
	// RootAllowed, on a LAUNCH, tells the agent that the framework may run
	// tasks and executors as uid 0: it authenticated, or the master has
	// root_submissions. Without it the agent refuses every task whose
	// user resolves to uid 0 (see frameworkauth.go).
	RootAllowed bool `json:"root_allowed,omitempty"`
}

// AgentUpdate carries one task status from an agent.
type AgentUpdate struct {
	AgentID     string           `json:"agent_id"`
	FrameworkID string           `json:"framework_id"`
	Status      mesos.TaskStatus `json:"status"`
}

// streamLink is an AgentLink that queues commands on an agent's stream.
type streamLink struct {
	cmds   chan AgentCommand
	done   chan struct{}
	once   sync.Once
	ponged atomic.Bool // the agent answered a ping since the last one
}

func (l *streamLink) send(c AgentCommand) {
	select {
	case l.cmds <- c:
	case <-l.done:
	default:
		l.close() // the agent stopped reading; it will reconnect
	}
}

func (l *streamLink) close() { l.once.Do(func() { close(l.done) }) }

func (l *streamLink) Launch(fw *mesos.FrameworkInfo, tasks []mesos.TaskInfo, rootAllowed bool) {
	l.send(AgentCommand{Type: CmdLaunch, Framework: fw, FrameworkID: fw.GetID().GetValue(), Tasks: tasks, RootAllowed: rootAllowed})
}

func (l *streamLink) Kill(fw mesos.FrameworkID, task mesos.TaskID) {
	l.send(AgentCommand{Type: CmdKill, FrameworkID: fw.Value, TaskID: task.Value})
}

func (l *streamLink) Acknowledge(fw mesos.FrameworkID, task mesos.TaskID, uuid []byte) {
	l.send(AgentCommand{Type: CmdAcknowledge, FrameworkID: fw.Value, TaskID: task.Value, UUID: uuid})
}

func (l *streamLink) ShutdownFramework(fw mesos.FrameworkID) {
	l.send(AgentCommand{Type: CmdShutdownFramework, FrameworkID: fw.Value})
}

func (l *streamLink) ShutdownExecutor(fw mesos.FrameworkID, ex mesos.ExecutorID) {
	l.send(AgentCommand{Type: CmdShutdownExecutor, FrameworkID: fw.Value, ExecutorID: ex.Value})
}

func (l *streamLink) Message(fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	l.send(AgentCommand{Type: CmdMessage, FrameworkID: fw.Value, ExecutorID: ex.Value, Data: data})
}

// AgentDisconnected detaches an agent's link; its offers are withdrawn. Its
// tasks stay: the agent re-registers with the same id and reports them.
func (m *Master) AgentDisconnected(agentID string, link AgentLink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agents[agentID]
	if a == nil || a.link != link {
		return
	}
	a.link = nil
	for _, o := range m.offers {
		if o.agent == agentID {
			m.removeOfferLocked(o)
			if fw := m.frameworks[o.fw]; fw != nil {
				fw.send(rescindEvent(o.id))
			}
		}
	}
	m.cfg.Logger.Warn("agent disconnected", "agent", agentID, "removal_in", m.cfg.AgentRemovalTimeout)
	time.AfterFunc(m.cfg.AgentRemovalTimeout, func() { m.agentUnreachable(agentID) })
}

// agentUnreachable reports the tasks of an agent that did not come back
// in time: TASK_UNREACHABLE to frameworks that declared PARTITION_AWARE,
// TASK_LOST to the others, with Mesos' reason and message. Its resources
// go; if the agent re-registers later, its tasks are known again and
// reconciliation tells their frameworks.
func (m *Master) agentUnreachable(agentID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agents[agentID]
	if a == nil || a.link != nil || a.unreachable {
		return
	}
	a.unreachable = true
	msg := "Agent " + a.info.Hostname + " is unreachable: health check timed out"
	m.cfg.Logger.Warn("agent unreachable", "agent", agentID, "hostname", a.info.Hostname)
	for _, fw := range m.frameworks {
		state := mesos.TASK_LOST
		for _, c := range fw.info.Capabilities {
			if c.Type == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
				state = mesos.TASK_UNREACHABLE
			}
		}
		for _, t := range fw.tasks {
			if t.agent != agentID || mesosutil.IsTerminal(t.state) || t.state == mesos.TASK_UNREACHABLE {
				continue
			}
			t.state = state
			st := m.masterUpdateLocked(fw, t.info.TaskID, agentID, state, mesos.REASON_AGENT_REMOVED, msg)
			m.publishTaskUpdatedLocked(t, st)
		}
		// Every framework hears of the lost agent (a FAILURE with only
		// the agent id), whether or not it ran tasks there.
		fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: agentID}}})
	}
	m.publishAgentRemovedLocked(a)
}

// AgentPong records that an agent answered a ping on its current stream.
func (m *Master) AgentPong(agentID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.agents[agentID]; a != nil {
		if l, ok := a.link.(*streamLink); ok {
			l.ponged.Store(true)
		}
	}
}

func (m *Master) registerAgentAPI(mux *http.ServeMux) {
	mux.HandleFunc("POST "+AgentSubscribePath, m.authAgent(m.serveAgentSubscribe))
	mux.HandleFunc("POST "+AgentPongPath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var p AgentPong
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&p); err != nil {
			http.Error(w, "bad pong: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.AgentPong(p.AgentID)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+AgentUpdatePath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var u AgentUpdate
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&u); err != nil {
			http.Error(w, "bad update: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.StatusUpdate(u.AgentID, u.FrameworkID, u.Status)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+AgentMessagePath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var msg AgentMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&msg); err != nil {
			http.Error(w, "bad message: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.ExecutorMessage(msg)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+AgentExecutorExitedPath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var e AgentExecutorExited
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&e); err != nil {
			http.Error(w, "bad executor exit: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.ExecutorExited(e)
		w.WriteHeader(http.StatusAccepted)
	}))
}

// ExecutorMessage relays an executor's message to its framework as a
// MESSAGE event. Like Mesos, it is dropped if the framework is not
// connected.
func (m *Master) ExecutorMessage(msg AgentMessage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[msg.FrameworkID]
	if fw == nil || fw.sub == nil {
		m.cfg.Logger.Warn("dropping an executor's message for a framework that is not connected",
			"framework", msg.FrameworkID, "executor", msg.ExecutorID)
		return
	}
	fw.send(&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{
		AgentID: mesos.AgentID{Value: msg.AgentID}, ExecutorID: mesos.ExecutorID{Value: msg.ExecutorID}, Data: msg.Data,
	}})
}

// ExecutorExited tells the executor's framework with a FAILURE event that
// carries the agent, the executor and its wait status, as Mesos does for
// executors that are not the built-in command executor.
func (m *Master) ExecutorExited(e AgentExecutorExited) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Logger.Info("executor exited", "agent", e.AgentID, "framework", e.FrameworkID, "executor", e.ExecutorID)
	fw := m.frameworks[e.FrameworkID]
	if fw == nil || fw.sub == nil {
		return
	}
	fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{
		AgentID: &mesos.AgentID{Value: e.AgentID}, ExecutorID: &mesos.ExecutorID{Value: e.ExecutorID}, Status: e.Status,
	}})
}

func (m *Master) serveAgentSubscribe(w http.ResponseWriter, r *http.Request) {
	var sub AgentSubscribe
	if err := json.NewDecoder(io.LimitReader(r.Body, limits.AgentSubscribeBytes)).Decode(&sub); err != nil {
		http.Error(w, "bad subscribe: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	link := &streamLink{cmds: make(chan AgentCommand, 4096), done: make(chan struct{})}
	id := m.RegisterAgent(sub, link)
	defer m.AgentDisconnected(id, link)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	rw := recordio.NewWriter(w)
	// A hung agent stops reading: a write to it must not block the ping
	// check below for longer than the agent has to answer.
	rc := http.NewResponseController(w)
	grace := m.cfg.AgentPingTimeout * time.Duration(m.cfg.MaxAgentPingTimeouts)
	write := func(c AgentCommand) bool {
		b, _ := json.Marshal(c)
		_ = rc.SetWriteDeadline(time.Now().Add(grace))
		if rw.WriteFrame(b) != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(AgentCommand{Type: CmdRegistered, AgentID: id}) {
		return
	}
	// Mesos' agent health check: a ping every AgentPingTimeout; the agent
	// that left MaxAgentPingTimeouts of them in a row unanswered is taken
	// for gone, as if its stream had closed (then AgentDisconnected, and
	// the removal timeout). Any pong since the previous ping answers it.
	ping := time.NewTicker(m.cfg.AgentPingTimeout)
	defer ping.Stop()
	pinged, missed := false, 0
	for {
		select {
		case c := <-link.cmds:
			if !write(c) {
				return
			}
		case <-ping.C:
			if link.ponged.Swap(false) || !pinged {
				missed = 0
			} else if missed++; missed >= m.cfg.MaxAgentPingTimeouts {
				m.cfg.Logger.Warn("agent did not answer pings; taking it for disconnected", "agent", id, "pings", missed)
				return
			}
			pinged = true
			if !write(AgentCommand{Type: CmdHeartbeat}) {
				return
			}
		case <-link.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}
