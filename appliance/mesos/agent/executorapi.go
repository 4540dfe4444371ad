package agent

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
)

// execSubscription is an executor's open event stream.
type execSubscription struct {
	events chan *executor.Event
	done   chan struct{}
	once   sync.Once
}

func (s *execSubscription) send(ev *executor.Event) {
	select {
	case s.events <- ev:
	default:
		s.close() // not reading: it will re-subscribe
	}
}

func (s *execSubscription) close() { s.once.Do(func() { close(s.done) }) }

func (a *Agent) serveExecutor(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "Expecting a 'POST' request", http.StatusMethodNotAllowed)
		return
	}
	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (media != mediaJSON && media != mediaProtobuf) {
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "Failed to read the request body", http.StatusBadRequest)
		return
	}
	var call executor.Call
	if media == mediaProtobuf {
		err = call.Unmarshal(body)
	} else {
		err = json.Unmarshal(body, &call)
	}
	if err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	out := media
	if acc, _, err := mime.ParseMediaType(r.Header.Get("Accept")); err == nil && (acc == mediaJSON || acc == mediaProtobuf) {
		out = acc
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		a.serveExecutorSubscribe(w, r, &call, out)
	case executor.Call_UPDATE:
		a.executorUpdate(w, &call)
	case executor.Call_MESSAGE:
		w.WriteHeader(http.StatusAccepted) // framework messages are not relayed yet
	default:
		http.Error(w, "Expecting 'type' to be SUBSCRIBE, UPDATE or MESSAGE", http.StatusBadRequest)
	}
}

// findExecutor returns the live executor named by a call. Caller holds a.mu.
func (a *Agent) findExecutor(call *executor.Call) (*frameworkState, *executorState) {
	fs := a.frameworks[call.FrameworkID.Value]
	if fs == nil {
		return nil, nil
	}
	return fs, fs.executors[call.ExecutorID.Value]
}

func (a *Agent) serveExecutorSubscribe(w http.ResponseWriter, r *http.Request, call *executor.Call, media string) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	fs, ex := a.findExecutor(call)
	if ex == nil || ex.shutdown {
		a.mu.Unlock()
		http.Error(w, "Unknown or terminating executor "+call.ExecutorID.Value, http.StatusBadRequest)
		return
	}
	if ex.sub != nil {
		ex.sub.close() // a re-subscription replaces the old stream
	}
	sub := &execSubscription{events: make(chan *executor.Event, 1024), done: make(chan struct{})}
	ex.sub = sub
	if s := call.Subscribe; s != nil {
		// Updates the executor sent but never saw acknowledged (the agent
		// may have restarted) go through the update manager again.
		for _, u := range s.UnacknowledgedUpdates {
			st := u.Status
			a.recordExecutorStatusLocked(ex, &st)
			a.updates.add(ex.fw, st)
		}
	}
	info := a.info
	sub.send(&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo: ex.info, FrameworkInfo: fs.info, AgentInfo: info,
		ContainerID: &mesos.ContainerID{Value: ex.containerID},
	}})
	for id, t := range ex.queued {
		ex.tasks[id] = &taskState{info: t, state: mesos.TASK_STAGING}
		sub.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}})
	}
	ex.queued = map[string]mesos.TaskInfo{}
	ex.subscribedOnce = true
	a.checkpointLocked(ex)
	a.mu.Unlock()
	a.cfg.Logger.Info("executor subscribed", "executor", call.ExecutorID.Value)

	defer func() {
		a.mu.Lock()
		if ex.sub == sub {
			ex.sub = nil
		}
		a.mu.Unlock()
	}()
	w.Header().Set("Content-Type", media)
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	rw := recordio.NewWriter(w)
	hb := time.NewTicker(15 * time.Second)
	defer hb.Stop()
	write := func(ev *executor.Event) bool {
		var b []byte
		var err error
		if media == mediaProtobuf {
			b, err = ev.Marshal()
		} else {
			b, err = json.Marshal(ev)
		}
		if err != nil || rw.WriteFrame(b) != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	for {
		select {
		case ev := <-sub.events:
			if !write(ev) {
				return
			}
		case <-hb.C:
			if !write(&executor.Event{Type: executor.Event_HEARTBEAT}) {
				return
			}
		case <-sub.done:
			for {
				select {
				case ev := <-sub.events:
					write(ev)
				default:
					return
				}
			}
		case <-r.Context().Done():
			return
		}
	}
}

// recordExecutorStatusLocked stamps an executor's update with the agent's
// view and applies it to the task.
func (a *Agent) recordExecutorStatusLocked(ex *executorState, st *mesos.TaskStatus) {
	st.Source = mesos.SOURCE_EXECUTOR.Enum()
	st.AgentID = &mesos.AgentID{Value: a.id}
	st.ExecutorID = &ex.info.ExecutorID
	if st.Timestamp == nil {
		now := float64(a.cfg.Now().UnixNano()) / 1e9
		st.Timestamp = &now
	}
	if t := ex.tasks[st.TaskID.Value]; t != nil {
		t.state = st.GetState()
		if mesosutil.IsTerminal(t.state) {
			delete(ex.tasks, st.TaskID.Value)
			ex.completed = append(ex.completed, t)
		}
	}
	a.checkpointLocked(ex)
}

func (a *Agent) executorUpdate(w http.ResponseWriter, call *executor.Call) {
	if call.Update == nil || len(call.Update.Status.UUID) == 0 {
		http.Error(w, "Expecting 'update.status.uuid' to be present", http.StatusBadRequest)
		return
	}
	st := call.Update.Status
	if st.State == nil {
		http.Error(w, "Expecting 'update.status.state' to be present", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	_, ex := a.findExecutor(call)
	if ex == nil {
		a.mu.Unlock()
		http.Error(w, "Unknown executor "+call.ExecutorID.Value, http.StatusBadRequest)
		return
	}
	a.mu.Unlock()
	// A task that died of the container's memory limit is reported as
	// Mesos reports it, and the container goes, as Mesos destroys it.
	limited := mesosutil.IsTerminal(st.GetState()) && a.noteLimitation(ex)
	a.mu.Lock()
	if limited {
		st.State, st.Reason = mesos.TASK_FAILED.Enum(), mesos.REASON_CONTAINER_LIMITATION_MEMORY.Enum()
		st.Message = proto.String(ex.limitation)
		ex.shutdown = true
	}
	a.recordExecutorStatusLocked(ex, &st)
	if limited {
		st.Source = mesos.SOURCE_AGENT.Enum()
	}
	sub := ex.sub
	a.mu.Unlock()
	if limited {
		go a.destroy(ex)
	}
	a.updates.add(ex.fw, st)
	w.WriteHeader(http.StatusAccepted)
	// The agent has taken responsibility for the update: tell the executor.
	if sub != nil {
		sub.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}})
	}
}
