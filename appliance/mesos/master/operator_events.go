package master

import (
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	mastercall "github.com/mesos/mesos-go/api/v1/lib/master"
)

// The operator API's SUBSCRIBE stream. As in Mesos, a subscriber first gets
// SUBSCRIBED with the whole state (GET_STATE) and the heartbeat interval,
// then an event whenever the master's state changes the way Mesos reports:
//
//   - FRAMEWORK_ADDED when a framework first subscribes (or is recovered
//     from a re-registering agent), FRAMEWORK_UPDATED when a known one
//     subscribes again, FRAMEWORK_REMOVED when it is torn down or its
//     failover timeout passes;
//   - AGENT_ADDED when an agent registers (or comes back after it was
//     removed as unreachable), AGENT_REMOVED when it is removed;
//   - TASK_ADDED when the master accepts a task (or learns of one from a
//     re-registering agent), TASK_UPDATED for each status update that
//     brings a new state, whoever generates it (agent or master);
//
// and HEARTBEAT every heartbeat interval. Events are queued per subscriber
// while the master's lock is held, so the stream's order is the order of
// the changes and nothing falls between SUBSCRIBED's snapshot and the first
// event. A subscriber that lets its queue fill up is dropped (its stream
// ends) instead of slowing the master down.

// opSubscriberQueue is how many events a subscriber may have outstanding.
const opSubscriberQueue = 1024

// opWriteTimeout bounds one write to a subscriber that stopped reading.
const opWriteTimeout = time.Minute

type opSubscriber struct {
	events chan *mastercall.Event
	done   chan struct{}
	once   sync.Once
}

func (s *opSubscriber) drop() { s.once.Do(func() { close(s.done) }) }

// opSubscribers are the open SUBSCRIBE streams; guarded by Master.mu.
type opSubscribers map[*opSubscriber]struct{}

// subscribeOperatorLocked adds a subscriber whose queue starts with
// SUBSCRIBED.
func (m *Master) subscribeOperatorLocked() *opSubscriber {
	if m.opSubs == nil {
		m.opSubs = opSubscribers{}
	}
	s := &opSubscriber{events: make(chan *mastercall.Event, opSubscriberQueue), done: make(chan struct{})}
	hb := m.cfg.HeartbeatInterval.Seconds()
	ev := proto.Clone(&mastercall.Event{
		Type:       mastercall.Event_SUBSCRIBED,
		Subscribed: &mastercall.Event_Subscribed{GetState: m.getStateLocked(), HeartbeatIntervalSeconds: &hb},
	}).(*mastercall.Event)
	emptyNotNull(reflect.ValueOf(ev))
	s.events <- ev
	m.opSubs[s] = struct{}{}
	return s
}

func (m *Master) unsubscribeOperator(s *opSubscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.opSubs, s)
	s.drop()
}

// publishLocked queues the event build makes on every subscriber's stream;
// build runs only when someone listens. The event is a copy: subscribers
// encode it after the lock is released.
func (m *Master) publishLocked(build func() *mastercall.Event) {
	if len(m.opSubs) == 0 {
		return
	}
	ev := proto.Clone(build()).(*mastercall.Event)
	emptyNotNull(reflect.ValueOf(ev))
	for s := range m.opSubs {
		select {
		case s.events <- ev:
		default:
			m.cfg.Logger.Warn("dropping an operator API subscriber that does not keep up", "queued", len(s.events))
			delete(m.opSubs, s)
			s.drop()
		}
	}
}

func (m *Master) publishTaskAddedLocked(t *task) {
	m.publishLocked(func() *mastercall.Event {
		return &mastercall.Event{Type: mastercall.Event_TASK_ADDED, TaskAdded: &mastercall.Event_TaskAdded{Task: m.taskProto(t)}}
	})
}

// publishTaskUpdatedLocked tells of a status update that brought the task
// to a new state (t.state is already that state).
func (m *Master) publishTaskUpdatedLocked(t *task, st mesos.TaskStatus) {
	m.publishLocked(func() *mastercall.Event {
		state := t.state
		st.Data = nil
		if st.AgentID == nil {
			st.AgentID = &mesos.AgentID{Value: t.agent}
		}
		return &mastercall.Event{Type: mastercall.Event_TASK_UPDATED, TaskUpdated: &mastercall.Event_TaskUpdated{
			FrameworkID: mesos.FrameworkID{Value: t.fw}, Status: st, State: &state,
		}}
	})
}

func (m *Master) publishFrameworkLocked(fw *framework, added bool) {
	m.publishLocked(func() *mastercall.Event {
		f := m.frameworkProto(fw, true)
		// As Mesos' events: the framework's info, state and times.
		f.Offers, f.InverseOffers, f.AllocatedResources, f.OfferedResources = nil, nil, nil, nil
		if added {
			return &mastercall.Event{Type: mastercall.Event_FRAMEWORK_ADDED, FrameworkAdded: &mastercall.Event_FrameworkAdded{Framework: f}}
		}
		return &mastercall.Event{Type: mastercall.Event_FRAMEWORK_UPDATED, FrameworkUpdated: &mastercall.Event_FrameworkUpdated{Framework: f}}
	})
}

func (m *Master) publishFrameworkRemovedLocked(fw *framework) {
	m.publishLocked(func() *mastercall.Event {
		return &mastercall.Event{Type: mastercall.Event_FRAMEWORK_REMOVED, FrameworkRemoved: &mastercall.Event_FrameworkRemoved{FrameworkInfo: fw.info}}
	})
}

func (m *Master) publishAgentAddedLocked(a *agent) {
	m.publishLocked(func() *mastercall.Event {
		return &mastercall.Event{Type: mastercall.Event_AGENT_ADDED, AgentAdded: &mastercall.Event_AgentAdded{Agent: m.agentProto(a)}}
	})
}

func (m *Master) publishAgentRemovedLocked(a *agent) {
	m.publishLocked(func() *mastercall.Event {
		return &mastercall.Event{Type: mastercall.Event_AGENT_REMOVED, AgentRemoved: &mastercall.Event_AgentRemoved{AgentID: mesos.AgentID{Value: a.id}}}
	})
}

// serveOperatorSubscribe streams the events of one SUBSCRIBE call in
// RecordIO, each record in media. With Accept: application/recordio the
// response names the framing in Content-Type and the records' type in
// Message-Content-Type (Mesos ≥ 1.2); otherwise Content-Type is the
// records' type, as the scheduler API's stream.
func (m *Master) serveOperatorSubscribe(w http.ResponseWriter, r *http.Request, media string) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if isRecordIO(r) {
		if ma := r.Header.Get("Message-Accept"); ma != "" {
			switch ma {
			case mediaJSON, mediaProtobuf:
				media = ma
			default:
				http.Error(w, "Expecting 'Message-Accept' of application/json or application/x-protobuf", http.StatusNotAcceptable)
				return
			}
		}
		w.Header().Set("Content-Type", "application/recordio")
		w.Header().Set("Message-Content-Type", media)
	} else {
		w.Header().Set("Content-Type", media)
	}
	w.Header().Set("Cache-Control", "no-cache")
	m.mu.Lock()
	sub := m.subscribeOperatorLocked()
	m.mu.Unlock()
	defer m.unsubscribeOperator(sub)
	w.WriteHeader(http.StatusOK)
	err := mesosutil.StreamEvents(r.Context(), mesosutil.NewFrameStream(w, opWriteTimeout), media, mesosutil.Events[*mastercall.Event]{
		Queue: sub.events, Done: sub.done,
		Heartbeat: &mastercall.Event{Type: mastercall.Event_HEARTBEAT}, HeartbeatEvery: m.cfg.HeartbeatInterval,
	})
	if err != nil && r.Context().Err() == nil {
		m.cfg.Logger.Info("operator event stream ended", "err", err)
	}
}
