package master

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/limits"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// streamLink is an AgentLink that queues commands on an agent's stream.
type streamLink struct {
	cmds   chan agentproto.Command
	done   chan struct{}
	once   sync.Once
	ponged atomic.Bool // the agent answered a ping since the last one
}

func (l *streamLink) send(c agentproto.Command) {
	select {
	case l.cmds <- c:
	case <-l.done:
	default:
		l.close() // the agent stopped reading; it will reconnect
	}
}

func (l *streamLink) close() { l.once.Do(func() { close(l.done) }) }

func (l *streamLink) Launch(fw *mesos.FrameworkInfo, tasks []mesos.TaskInfo, rootAllowed bool) {
	l.send(agentproto.Command{Type: agentproto.CmdLaunch, Framework: fw, FrameworkID: fw.GetID().GetValue(), Tasks: tasks, RootAllowed: rootAllowed})
}

func (l *streamLink) Kill(fw mesos.FrameworkID, task mesos.TaskID) {
	l.send(agentproto.Command{Type: agentproto.CmdKill, FrameworkID: fw.Value, TaskID: task.Value})
}

func (l *streamLink) Acknowledge(fw mesos.FrameworkID, task mesos.TaskID, uuid []byte) {
	l.send(agentproto.Command{Type: agentproto.CmdAcknowledge, FrameworkID: fw.Value, TaskID: task.Value, UUID: uuid})
}

func (l *streamLink) ShutdownFramework(fw mesos.FrameworkID) {
	l.send(agentproto.Command{Type: agentproto.CmdShutdownFramework, FrameworkID: fw.Value})
}

func (l *streamLink) ShutdownExecutor(fw mesos.FrameworkID, ex mesos.ExecutorID) {
	l.send(agentproto.Command{Type: agentproto.CmdShutdownExecutor, FrameworkID: fw.Value, ExecutorID: ex.Value})
}

func (l *streamLink) Message(fw mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	l.send(agentproto.Command{Type: agentproto.CmdMessage, FrameworkID: fw.Value, ExecutorID: ex.Value, Data: data})
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

// agentproto.Pong records that an agent answered a ping on its current stream.
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
	mux.HandleFunc("POST "+agentproto.SubscribePath, m.authAgent(m.serveAgentSubscribe))
	mux.HandleFunc("POST "+agentproto.PongPath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var p agentproto.Pong
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&p); err != nil {
			http.Error(w, "bad pong: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.AgentPong(p.AgentID)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+agentproto.UpdatePath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var u agentproto.Update
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&u); err != nil {
			http.Error(w, "bad update: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.StatusUpdate(u.AgentID, u.FrameworkID, u.Status)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+agentproto.MessagePath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var msg agentproto.Message
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&msg); err != nil {
			http.Error(w, "bad message: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.ExecutorMessage(msg)
		w.WriteHeader(http.StatusAccepted)
	}))
	mux.HandleFunc("POST "+agentproto.ExecutorExitedPath, m.authAgent(func(w http.ResponseWriter, r *http.Request) {
		var e agentproto.ExecutorExited
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
func (m *Master) ExecutorMessage(msg agentproto.Message) {
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
func (m *Master) ExecutorExited(e agentproto.ExecutorExited) {
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
	var sub agentproto.Subscribe
	if err := json.NewDecoder(io.LimitReader(r.Body, limits.AgentSubscribeBytes)).Decode(&sub); err != nil {
		http.Error(w, "bad subscribe: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	link := &streamLink{cmds: make(chan agentproto.Command, 4096), done: make(chan struct{})}
	id := m.RegisterAgent(sub, link)
	defer m.AgentDisconnected(id, link)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	rw := recordio.NewWriter(w)
	// A hung agent stops reading: a write to it must not block the ping
	// check below for longer than the agent has to answer.
	rc := http.NewResponseController(w)
	grace := m.cfg.AgentPingTimeout * time.Duration(m.cfg.MaxAgentPingTimeouts)
	write := func(c agentproto.Command) bool {
		b, _ := json.Marshal(c)
		_ = rc.SetWriteDeadline(time.Now().Add(grace))
		if rw.WriteFrame(b) != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(agentproto.Command{Type: agentproto.CmdRegistered, AgentID: id}) {
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
			if !write(agentproto.Command{Type: agentproto.CmdHeartbeat}) {
				return
			}
		case <-link.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}
