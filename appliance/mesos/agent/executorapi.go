package agent

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/limits"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
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
	var call executor.Call
	out, ok := mesosutil.ReadCall(w, r, limits.ExecutorCallBytes, &call)
	if !ok {
		return
	}
	if call.FrameworkID.Value == "" || call.ExecutorID.Value == "" {
		http.Error(w, "Expecting 'framework_id' and 'executor_id' to be present", http.StatusBadRequest)
		return
	}
	if a.execKey != nil {
		a.mu.Lock()
		_, ex, _ := a.findExecutor(&call)
		ok := a.executorAuthorized(r, call.FrameworkID.Value, call.ExecutorID.Value, ex)
		a.mu.Unlock()
		if !ok {
			a.cfg.Logger.Warn("refused an executor call without the executor's token", "executor", call.ExecutorID.Value, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="aurorabox executors"`)
			http.Error(w, "executor authentication failed: this call needs the token of the executor it names ("+EnvExecutorToken+")", http.StatusUnauthorized)
			return
		}
	}
	// Errors are answered with HTTP status codes, as Mesos' agent does:
	// it never sends an ERROR event to a v1 HTTP executor (executor.proto
	// keeps that event for the old driver; mesos-go's and Mesos' executor
	// libraries raise it themselves for a call that fails).
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		a.serveExecutorSubscribe(w, r, &call, out)
	case executor.Call_UPDATE:
		a.executorUpdate(w, &call)
	case executor.Call_MESSAGE:
		a.executorMessage(w, &call)
	case executor.Call_HEARTBEAT:
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "Expecting 'type' to be SUBSCRIBE, UPDATE or MESSAGE", http.StatusBadRequest)
	}
}

// findExecutor returns the executor named by a call, or the answer for a
// call that names none. Caller holds a.mu.
func (a *Agent) findExecutor(call *executor.Call) (*frameworkState, *executorState, string) {
	fs := a.frameworks[call.FrameworkID.Value]
	if fs == nil {
		return nil, nil, "Framework cannot be found"
	}
	ex := fs.executors[call.ExecutorID.Value]
	if ex == nil {
		return fs, nil, "Executor cannot be found"
	}
	return fs, ex, ""
}

// subscribedLocked reports whether ex may send calls other than SUBSCRIBE:
// Mesos answers those of an executor that never subscribed with 403. An
// executor adopted after an agent restart counts as subscribed.
func subscribedLocked(ex *executorState) bool { return ex.subscribedOnce || ex.recovered }

func (a *Agent) serveExecutorSubscribe(w http.ResponseWriter, r *http.Request, call *executor.Call, media string) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	a.mu.Lock()
	fs, ex, missing := a.findExecutor(call)
	if ex == nil {
		a.mu.Unlock()
		http.Error(w, missing, http.StatusBadRequest)
		return
	}
	sub := &execSubscription{events: make(chan *executor.Event, 1024), done: make(chan struct{})}
	if ex.shutdown || fs.terminating {
		// As Mesos does for an executor it is shutting down: the stream
		// carries SHUTDOWN and ends.
		a.mu.Unlock()
		a.cfg.Logger.Warn("shutting down an executor that subscribed while terminating", "executor", call.ExecutorID.Value)
		sub.send(&executor.Event{Type: executor.Event_SHUTDOWN})
		sub.close()
		a.streamExecutorEvents(w, r, media, sub)
		return
	}
	if ex.sub != nil {
		ex.sub.close() // a re-subscription replaces the old stream
	}
	ex.sub = sub
	var unackedTasks map[string]bool
	if s := call.Subscribe; s != nil {
		// Updates the executor sent but never saw acknowledged (the agent
		// may have restarted) go through the update manager again.
		for _, u := range s.UnacknowledgedUpdates {
			st := u.Status
			a.recordExecutorStatusLocked(ex, &st)
			a.sendUpdateLocked(ex.fw, st)
		}
		unackedTasks = map[string]bool{}
		for _, t := range s.UnacknowledgedTasks {
			unackedTasks[t.TaskID.Value] = true
		}
	}
	// A task the agent sent (LAUNCH) that is still STAGING, with no update
	// from the executor and not among the tasks it says it holds, was lost
	// on the way (the agent died before the executor got it). Mesos reports
	// it TASK_DROPPED to partition-aware frameworks, TASK_LOST to others.
	for _, t := range sortedTaskStates(ex.tasks) {
		if t.state != mesos.TASK_STAGING || unackedTasks[t.info.TaskID.Value] {
			continue
		}
		state := mesos.TASK_LOST
		if partitionAware(fs.info) {
			state = mesos.TASK_DROPPED
		}
		a.cfg.Logger.Info("task unknown to its re-subscribed executor", "task", t.info.TaskID.Value, "state", state)
		a.agentUpdateLocked(ex.fw, ex, t.info.TaskID, state, mesos.REASON_AGENT_RESTARTED, "Task launched during agent restart")
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
	a.streamExecutorEvents(w, r, media, sub)
}

// streamExecutorEvents writes sub's events as a RecordIO stream, with
// heartbeats, until sub is closed or the executor goes.
func (a *Agent) streamExecutorEvents(w http.ResponseWriter, r *http.Request, media string, sub *execSubscription) {
	flusher := w.(http.Flusher)
	w.Header().Set("Content-Type", media)
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	err := mesosutil.StreamEvents(r.Context(), mesosutil.NewFrameStream(w, 0), media, mesosutil.Events[*executor.Event]{
		Queue: sub.events, Done: sub.done,
		Heartbeat: &executor.Event{Type: executor.Event_HEARTBEAT}, HeartbeatEvery: 15 * time.Second,
	})
	if err != nil && r.Context().Err() == nil {
		a.cfg.Logger.Info("executor event stream ended", "err", err)
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
	_, ex, missing := a.findExecutor(call)
	if ex == nil {
		a.mu.Unlock()
		http.Error(w, missing, http.StatusBadRequest)
		return
	}
	if !subscribedLocked(ex) {
		a.mu.Unlock()
		http.Error(w, "Executor is not subscribed", http.StatusForbidden)
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
	a.mu.Lock()
	a.sendUpdateLocked(ex.fw, st)
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	// The agent has taken responsibility for the update: tell the executor.
	if sub != nil {
		sub.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}})
	}
}

// executorMessage relays an executor's MESSAGE call to its framework,
// through the master, once and without delivery guarantees.
func (a *Agent) executorMessage(w http.ResponseWriter, call *executor.Call) {
	if call.Message == nil {
		http.Error(w, "Expecting 'message' to be present", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	fs, ex, missing := a.findExecutor(call)
	if ex == nil {
		a.mu.Unlock()
		http.Error(w, missing, http.StatusBadRequest)
		return
	}
	if !subscribedLocked(ex) {
		a.mu.Unlock()
		http.Error(w, "Executor is not subscribed", http.StatusForbidden)
		return
	}
	terminating, agentID := fs.terminating, a.id
	a.mu.Unlock()
	if terminating {
		a.cfg.Logger.Warn("dropping an executor's message: its framework is terminating", "executor", call.ExecutorID.Value)
	} else {
		a.notifyMaster(agentproto.MessagePath, agentproto.Message{
			AgentID: agentID, FrameworkID: call.FrameworkID.Value, ExecutorID: call.ExecutorID.Value, Data: call.Message.Data,
		})
	}
	w.WriteHeader(http.StatusAccepted)
}

func partitionAware(fw mesos.FrameworkInfo) bool {
	for _, c := range fw.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_PARTITION_AWARE {
			return true
		}
	}
	return false
}

func sortedTaskStates(ts map[string]*taskState) []*taskState {
	out := make([]*taskState, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.TaskID.Value < out[j].info.TaskID.Value })
	return out
}
