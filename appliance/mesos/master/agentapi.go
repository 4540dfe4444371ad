package master

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// The agent ↔ master protocol is internal to aurorabox (a real Mesos agent
// speaks libprocess instead). An agent POSTs AgentSubscribe to
// AgentSubscribePath and reads a RecordIO stream of JSON AgentCommands for as
// long as it is connected; it reports task status with AgentUpdate POSTs to
// AgentUpdatePath and resends each until an ACKNOWLEDGE command arrives.
const (
	AgentSubscribePath = "/internal/v1/agent/subscribe"
	AgentUpdatePath    = "/internal/v1/agent/update"
)

// AgentSubscribe registers (or re-registers, with info.id set) an agent.
type AgentSubscribe struct {
	Info mesos.AgentInfo `json:"agent_info"`
	PID  string          `json:"pid"` // slave(1)@host:port
}

// Agent command types.
const (
	CmdRegistered        = "REGISTERED" // first command; AgentID is the assigned id
	CmdLaunch            = "LAUNCH"
	CmdKill              = "KILL"
	CmdAcknowledge       = "ACKNOWLEDGE"
	CmdShutdownFramework = "SHUTDOWN_FRAMEWORK"
	CmdHeartbeat         = "HEARTBEAT"
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
}

// AgentUpdate carries one task status from an agent.
type AgentUpdate struct {
	AgentID     string           `json:"agent_id"`
	FrameworkID string           `json:"framework_id"`
	Status      mesos.TaskStatus `json:"status"`
}

// streamLink is an AgentLink that queues commands on an agent's stream.
type streamLink struct {
	cmds chan AgentCommand
	done chan struct{}
	once sync.Once
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

func (l *streamLink) Launch(fw *mesos.FrameworkInfo, tasks []mesos.TaskInfo) {
	l.send(AgentCommand{Type: CmdLaunch, Framework: fw, FrameworkID: fw.GetID().GetValue(), Tasks: tasks})
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
			m.masterUpdateLocked(fw, t.info.TaskID, agentID, state, mesos.REASON_AGENT_REMOVED, msg)
		}
	}
}

func (m *Master) registerAgentAPI(mux *http.ServeMux) {
	mux.HandleFunc("POST "+AgentSubscribePath, m.serveAgentSubscribe)
	mux.HandleFunc("POST "+AgentUpdatePath, func(w http.ResponseWriter, r *http.Request) {
		var u AgentUpdate
		if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&u); err != nil {
			http.Error(w, "bad update: "+err.Error(), http.StatusBadRequest)
			return
		}
		m.StatusUpdate(u.AgentID, u.FrameworkID, u.Status)
		w.WriteHeader(http.StatusAccepted)
	})
}

func (m *Master) serveAgentSubscribe(w http.ResponseWriter, r *http.Request) {
	var sub AgentSubscribe
	if err := json.NewDecoder(io.LimitReader(r.Body, maxCallBytes)).Decode(&sub); err != nil {
		http.Error(w, "bad subscribe: "+err.Error(), http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	link := &streamLink{cmds: make(chan AgentCommand, 4096), done: make(chan struct{})}
	id := m.RegisterAgent(sub.Info, sub.PID, link)
	defer m.AgentDisconnected(id, link)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	rw := recordio.NewWriter(w)
	write := func(c AgentCommand) bool {
		b, _ := json.Marshal(c)
		if rw.WriteFrame(b) != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	if !write(AgentCommand{Type: CmdRegistered, AgentID: id}) {
		return
	}
	hb := time.NewTicker(m.cfg.HeartbeatInterval)
	defer hb.Stop()
	for {
		select {
		case c := <-link.cmds:
			if !write(c) {
				return
			}
		case <-hb.C:
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
