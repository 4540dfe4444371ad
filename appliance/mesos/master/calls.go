package master

import (
	"fmt"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// subscription is one framework's open event stream.
type subscription struct {
	streamID string
	events   chan *scheduler.Event
	done     chan struct{}
	once     sync.Once
}

func (s *subscription) close() { s.once.Do(func() { close(s.done) }) }

// send queues an event on the framework's stream; a consumer too slow to
// keep a large buffer drained is disconnected, as the master would drop it.
func (fw *framework) send(ev *scheduler.Event) {
	if fw.sub == nil {
		return
	}
	select {
	case fw.sub.events <- ev:
	default:
		fw.sub.close()
	}
}

// CallError is a rejected call, with the HTTP status the API answers.
type CallError struct {
	Status int
	Msg    string
}

func (e *CallError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error {
	return &CallError{400, fmt.Sprintf(format, a...)}
}

// Subscribe registers a framework, or fails over an existing one when the
// FrameworkInfo carries its id, and returns its new event stream. principal
// is what the request authenticated as ("" for none; see frameworkauth.go).
// An empty user is the agent's own, as in Mesos.
func (m *Master) Subscribe(info mesos.FrameworkInfo, streamID, principal string) (*subscription, string, error) {
	if info.Name == "" {
		return nil, "", badRequest("framework_info needs a name")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	id := info.GetID().GetValue()
	fw := m.frameworks[id]
	if id == "" {
		id = fmt.Sprintf("%s-%04d", m.id, m.nextFW)
		m.nextFW++
	}
	if m.isCompletedLocked(id) {
		return nil, "", &CallError{403, "framework " + id + " has been removed"}
	}
	if err := m.admitFrameworkLocked(fw, info, principal); err != nil {
		return nil, "", err
	}
	added := fw == nil
	if fw == nil {
		fw = &framework{id: id, registered: now, tasks: map[string]*task{}}
		m.frameworks[id] = fw
		m.cfg.Logger.Info("framework registered", "framework", id, "name", info.Name)
	} else {
		if fw.sub != nil {
			// Failover: the old connection gets an ERROR and is closed.
			fw.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework failed over"}})
			fw.sub.close()
		}
		if fw.failover != nil {
			fw.failover.Stop()
			fw.failover = nil
		}
		m.rescindOffersLocked(fw, false)
		fw.reregistered = now
		m.cfg.Logger.Info("framework re-subscribed", "framework", id)
	}
	info.ID = &mesos.FrameworkID{Value: id}
	fw.info = info
	fw.principal = principal
	fw.suppressed = false
	// A (re-)subscribed framework starts unsuppressed and unfiltered, as
	// Mesos clears a framework's filters when it deactivates.
	m.addToAllocatorLocked(fw)
	m.alloc.Revive(id)
	m.alloc.SetFrameworkActive(id, true)
	fw.recovered = false
	if fw.registered.IsZero() {
		fw.registered = now // known until now only from its agents' tasks
	}
	sub := &subscription{streamID: streamID, events: make(chan *scheduler.Event, 4096), done: make(chan struct{})}
	fw.sub = sub
	m.publishFrameworkLocked(fw, added)
	hb := m.cfg.HeartbeatInterval.Seconds()
	fw.send(&scheduler.Event{
		Type: scheduler.Event_SUBSCRIBED,
		Subscribed: &scheduler.Event_Subscribed{
			FrameworkID: &mesos.FrameworkID{Value: id}, HeartbeatIntervalSeconds: &hb, MasterInfo: m.masterInfo(),
		},
	})
	m.dropInverseOffersLocked(id)
	m.syncInverseOffersLocked()
	m.allocateLocked()
	return sub, id, nil
}

// Disconnected is called when a framework's stream ends. The framework keeps
// its tasks for its failover_timeout, then is removed.
func (m *Master) Disconnected(fwID string, sub *subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	if fw == nil || fw.sub != sub {
		return // already failed over or removed
	}
	fw.sub = nil
	fw.unregistered = m.cfg.Now()
	m.rescindOffersLocked(fw, false)
	m.alloc.SetFrameworkActive(fwID, false)
	timeout := time.Duration(fw.info.GetFailoverTimeout() * float64(time.Second))
	m.cfg.Logger.Info("framework disconnected", "framework", fwID, "failover_timeout", timeout)
	fw.failover = time.AfterFunc(timeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if f := m.frameworks[fwID]; f == fw && f.sub == nil {
			m.cfg.Logger.Info("framework failover timeout; removing", "framework", fwID)
			m.removeFrameworkLocked(fw)
		}
	})
	m.allocateLocked()
}

// frameworkFor checks that a call comes from the framework's current stream.
func (m *Master) frameworkFor(fwID, streamID string) (*framework, error) {
	fw := m.frameworks[fwID]
	if fw == nil {
		return nil, &CallError{403, "framework " + fwID + " is not subscribed"}
	}
	if fw.sub == nil {
		return nil, &CallError{403, "framework " + fwID + " is not connected"}
	}
	if streamID != fw.sub.streamID {
		return nil, badRequest("the Mesos-Stream-Id %q does not match the framework's stream", streamID)
	}
	return fw, nil
}

// Handle applies a non-SUBSCRIBE call.
func (m *Master) Handle(call *scheduler.Call, streamID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw, err := m.frameworkFor(call.GetFrameworkID().GetValue(), streamID)
	if err != nil {
		return err
	}
	switch call.GetType() {
	case scheduler.Call_TEARDOWN:
		m.removeFrameworkLocked(fw)
	case scheduler.Call_ACCEPT:
		if call.Accept == nil {
			return badRequest("ACCEPT without accept")
		}
		m.acceptLocked(fw, call.Accept)
	case scheduler.Call_DECLINE:
		if call.Decline == nil {
			return badRequest("DECLINE without decline")
		}
		m.declineLocked(fw, call.Decline.OfferIDs, call.Decline.Filters)
	case scheduler.Call_REVIVE:
		fw.suppressed = false
		m.alloc.Revive(fw.id)
		m.allocateLocked()
	case scheduler.Call_SUPPRESS:
		fw.suppressed = true
		m.alloc.Suppress(fw.id)
	case scheduler.Call_KILL:
		if call.Kill == nil {
			return badRequest("KILL without kill")
		}
		m.killLocked(fw, call.Kill.TaskID)
	case scheduler.Call_SHUTDOWN:
		// The agent asks the executor to shut down (it kills its tasks)
		// and destroys it after its grace period.
		if call.Shutdown == nil {
			return badRequest("SHUTDOWN without shutdown")
		}
		if a := m.agents[call.Shutdown.AgentID.Value]; a != nil && a.link != nil {
			a.link.ShutdownExecutor(mesos.FrameworkID{Value: fw.id}, call.Shutdown.ExecutorID)
		} else {
			m.cfg.Logger.Warn("cannot shut down an executor on an agent that is not connected",
				"agent", call.Shutdown.AgentID.Value, "executor", call.Shutdown.ExecutorID.Value)
		}
	case scheduler.Call_ACKNOWLEDGE:
		if call.Acknowledge == nil {
			return badRequest("ACKNOWLEDGE without acknowledge")
		}
		ack := call.Acknowledge
		if a := m.agents[ack.AgentID.Value]; a != nil && a.link != nil {
			a.link.Acknowledge(mesos.FrameworkID{Value: fw.id}, ack.TaskID, ack.UUID)
		}
	case scheduler.Call_RECONCILE:
		m.reconcileLocked(fw, call.GetReconcile())
	case scheduler.Call_MESSAGE:
		// Relayed to the executor through its agent, without delivery
		// guarantees: dropped where the agent is not connected.
		if call.Message == nil {
			return badRequest("MESSAGE without message")
		}
		msg := call.Message
		if a := m.agents[msg.AgentID.Value]; a != nil && a.link != nil {
			a.link.Message(mesos.FrameworkID{Value: fw.id}, msg.ExecutorID, msg.Data)
		} else {
			m.cfg.Logger.Warn("dropping a framework message for an agent that is not connected",
				"agent", msg.AgentID.Value, "executor", msg.ExecutorID.Value)
		}
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		if call.AcceptInverseOffers == nil {
			return badRequest("ACCEPT_INVERSE_OFFERS without accept_inverse_offers")
		}
		m.answerInverseOffersLocked(fw, call.AcceptInverseOffers.InverseOfferIDs, true)
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		if call.DeclineInverseOffers == nil {
			return badRequest("DECLINE_INVERSE_OFFERS without decline_inverse_offers")
		}
		m.answerInverseOffersLocked(fw, call.DeclineInverseOffers.InverseOfferIDs, false)
	case scheduler.Call_REQUEST:
		// Mesos' allocator ignores resource requests; so do we.
	default:
		return badRequest("unsupported call type %s", call.GetType())
	}
	return nil
}

// declineLocked returns offers; the allocator filters their resources
// for the framework (filters' refuse_seconds, or Config.DeclineDelay).
func (m *Master) declineLocked(fw *framework, ids []mesos.OfferID, filters *mesos.Filters) {
	now := m.cfg.Now()
	for _, id := range ids {
		o := m.offers[id.Value]
		if o == nil || o.fw != fw.id {
			continue // rescinded or never ours: nothing to decline
		}
		m.alloc.Decline(now, o.id, filters)
		m.dropOfferLocked(o)
	}
	m.allocateLocked()
}

func (m *Master) acceptLocked(fw *framework, acc *scheduler.Call_Accept) {
	var offered mesos.Resources
	agentID := ""
	valid := len(acc.OfferIDs) > 0
	reason := "no offers"
	seen := map[string]bool{}
	for _, id := range acc.OfferIDs {
		o := m.offers[id.Value]
		switch {
		case seen[id.Value]:
			valid, reason = false, "offer "+id.Value+" appears twice"
		case o == nil || o.fw != fw.id:
			valid, reason = false, "offer "+id.Value+" is no longer valid"
		case agentID != "" && o.agent != agentID:
			valid, reason = false, "offers span several agents"
		default:
			agentID = o.agent
			offered = offered.Plus(o.res...)
		}
		seen[id.Value] = true
	}
	var launch []mesos.TaskInfo
	for _, op := range acc.Operations {
		switch op.GetType() {
		case mesos.Offer_Operation_LAUNCH:
			launch = append(launch, op.GetLaunch().GetTaskInfos()...)
		case mesos.Offer_Operation_LAUNCH_GROUP:
			lg := op.GetLaunchGroup()
			for _, t := range lg.GetTaskGroup().Tasks {
				if t.Executor == nil {
					ex := lg.Executor
					t.Executor = &ex
				}
				launch = append(launch, t)
			}
		}
	}
	if !valid {
		for _, t := range launch {
			m.masterUpdateLocked(fw, t.TaskID, agentID, mesos.TASK_DROPPED, mesos.REASON_INVALID_OFFERS, reason)
		}
		// Valid offers among invalid ones are returned, as Mesos does.
		for _, id := range acc.OfferIDs {
			if o := m.offers[id.Value]; o != nil && o.fw == fw.id {
				m.removeOfferLocked(o)
			}
		}
		m.allocateLocked()
		return
	}
	ids := make([]string, len(acc.OfferIDs))
	for i, id := range acc.OfferIDs {
		ids[i] = id.Value
		m.dropOfferLocked(m.offers[id.Value])
	}
	a := m.agents[agentID]
	remaining := offered.Clone()
	var ok []mesos.TaskInfo
	executors := map[string]bool{}
	for _, t := range fw.tasks {
		if t.agent == agentID && t.info.Executor != nil {
			executors[t.info.Executor.ExecutorID.Value] = true
		}
	}
	alloc := offerAllocation(fw.info)
	for _, t := range launch {
		if err := unallocateTask(&t, alloc); err != nil {
			m.masterUpdateLocked(fw, t.TaskID, agentID, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, err.Error())
			continue
		}
		need := sumResources(t.Resources)
		if t.Executor != nil && !executors[t.Executor.ExecutorID.Value] {
			need = need.Plus(sumResources(t.Executor.Resources)...)
		}
		if err := m.validateTask(fw, &t); err != "" {
			m.masterUpdateLocked(fw, t.TaskID, agentID, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, err)
			continue
		}
		if !resources.ContainsAll(remaining, need) {
			m.masterUpdateLocked(fw, t.TaskID, agentID, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID,
				fmt.Sprintf("task uses more resources (%s) than available (%s)", need, remaining))
			continue
		}
		remaining = remaining.Minus(need...)
		if t.Executor != nil {
			executors[t.Executor.ExecutorID.Value] = true
		}
		t.AgentID = mesos.AgentID{Value: agentID}
		tk := &task{info: t, fw: fw.id, agent: agentID, state: mesos.TASK_STAGING, res: need}
		fw.tasks[t.TaskID.Value] = tk
		a.used = a.used.Plus(need...)
		m.publishTaskAddedLocked(tk)
		ok = append(ok, t)
	}
	if len(ok) > 0 && a.link != nil {
		a.link.Launch(proto.Clone(&fw.info).(*mesos.FrameworkInfo), ok, m.rootAllowedLocked(fw))
	}
	// What the tasks use stays the framework's; the rest is refused, with
	// the call's filters or the default one.
	m.alloc.Accept(m.cfg.Now(), ids, offered.Minus(remaining...), acc.Filters)
	m.allocateLocked()
}

func (m *Master) validateTask(fw *framework, t *mesos.TaskInfo) string {
	switch {
	case t.TaskID.Value == "":
		return "task id is empty"
	case fw.tasks[t.TaskID.Value] != nil:
		return "task id " + t.TaskID.Value + " is already in use"
	case t.Command == nil && t.Executor == nil:
		return "task needs a command or an executor"
	case t.Command != nil && t.Executor != nil:
		return "task has both a command and an executor"
	}
	if err := resources.Validate(t.Resources...); err != nil {
		return "invalid resources: " + err.Error()
	}
	return ""
}

// masterUpdateLocked sends a status update generated by the master itself
// (no uuid, so it needs no acknowledgement).
func (m *Master) masterUpdateLocked(fw *framework, taskID mesos.TaskID, agentID string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) mesos.TaskStatus {
	now := float64(m.cfg.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID: taskID, State: state.Enum(), Reason: reason.Enum(), Message: &msg,
		Source: mesos.SOURCE_MASTER.Enum(), Timestamp: &now,
	}
	if agentID != "" {
		st.AgentID = &mesos.AgentID{Value: agentID}
	}
	fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	return st
}

func (m *Master) killLocked(fw *framework, id mesos.TaskID) {
	t := fw.tasks[id.Value]
	if t == nil {
		m.masterUpdateLocked(fw, id, "", mesos.TASK_LOST, mesos.REASON_RECONCILIATION, "attempted to kill an unknown task")
		return
	}
	if a := m.agents[t.agent]; a != nil && a.link != nil {
		a.link.Kill(mesos.FrameworkID{Value: fw.id}, id)
	}
}

func (m *Master) reconcileLocked(fw *framework, rec *scheduler.Call_Reconcile) {
	send := func(t *task) {
		now := float64(m.cfg.Now().UnixNano()) / 1e9
		st := mesos.TaskStatus{
			TaskID: t.info.TaskID, State: t.state.Enum(), Reason: mesos.REASON_RECONCILIATION.Enum(),
			Source: mesos.SOURCE_MASTER.Enum(), Timestamp: &now, AgentID: &mesos.AgentID{Value: t.agent},
		}
		if n := len(t.statuses); n > 0 {
			st.Message = t.statuses[n-1].Message
			st.Healthy = t.statuses[n-1].Healthy
		}
		fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
	}
	if rec == nil || len(rec.Tasks) == 0 {
		for _, t := range fw.tasks {
			send(t)
		}
		return
	}
	for _, rt := range rec.Tasks {
		if t := fw.tasks[rt.TaskID.Value]; t != nil {
			send(t)
			continue
		}
		found := false
		for _, t := range fw.completedTasks {
			if t.info.TaskID.Value == rt.TaskID.Value {
				send(t)
				found = true
				break
			}
		}
		if !found {
			m.masterUpdateLocked(fw, rt.TaskID, rt.GetAgentID().GetValue(), mesos.TASK_LOST, mesos.REASON_RECONCILIATION, "reconciliation: task is unknown")
		}
	}
}

// removeFrameworkLocked tears a framework down: its tasks are killed, its
// offers withdrawn, and it moves to completed_frameworks. As in Mesos, its
// tasks are recorded as TASK_KILLED (REASON_FRAMEWORK_REMOVED) at once; no
// update is sent, for there is nobody left to receive it.
func (m *Master) removeFrameworkLocked(fw *framework) {
	m.rescindOffersLocked(fw, false)
	m.alloc.RemoveFramework(fw.id)
	agents := map[string]bool{}
	now := float64(m.cfg.Now().UnixNano()) / 1e9
	msg := "Framework " + fw.id + " removed"
	for _, t := range sortedTasks(fw.tasks) {
		agents[t.agent] = true
		if a := m.agents[t.agent]; a != nil {
			a.used = a.used.Minus(t.res...)
		}
		if !mesosutil.IsTerminal(t.state) {
			t.state = mesos.TASK_KILLED
			t.statuses = append(t.statuses, mesos.TaskStatus{
				TaskID: t.info.TaskID, State: mesos.TASK_KILLED.Enum(), Reason: mesos.REASON_FRAMEWORK_REMOVED.Enum(),
				Message: &msg, Source: mesos.SOURCE_MASTER.Enum(), Timestamp: &now, AgentID: &mesos.AgentID{Value: t.agent},
			})
			m.publishTaskUpdatedLocked(t, t.statuses[len(t.statuses)-1])
		}
		fw.completedTasks = append(fw.completedTasks, t)
	}
	fw.tasks = map[string]*task{}
	for aid := range agents {
		if a := m.agents[aid]; a != nil && a.link != nil {
			a.link.ShutdownFramework(mesos.FrameworkID{Value: fw.id})
		}
	}
	if fw.sub != nil {
		fw.sub.close()
		fw.sub = nil
	}
	fw.unregistered = m.cfg.Now()
	delete(m.frameworks, fw.id)
	m.completed = append(m.completed, fw)
	m.publishFrameworkRemovedLocked(fw)
	m.allocateLocked()
}

// StatusUpdate records an update an agent reports and forwards it to the
// framework. The agent resends it until the framework acknowledges it.
func (m *Master) StatusUpdate(agentID string, fwID string, st mesos.TaskStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fw := m.frameworks[fwID]
	if fw == nil {
		return
	}
	if t := fw.tasks[st.TaskID.Value]; t != nil {
		if t.agent != agentID {
			m.cfg.Logger.Warn("ignoring a status update from an agent that does not run the task",
				"task", st.TaskID.Value, "from", agentID, "agent", t.agent)
			return
		}
		changed := t.state != st.GetState() || len(t.statuses) == 0
		if changed {
			t.statuses = append(t.statuses, st)
		}
		t.state = st.GetState()
		if changed {
			m.publishTaskUpdatedLocked(t, st)
		}
		if mesosutil.IsTerminal(t.state) {
			if a := m.agents[t.agent]; a != nil {
				a.used = a.used.Minus(t.res...)
			}
			m.alloc.Recover(fw.id, t.agent, t.res)
			delete(fw.tasks, t.info.TaskID.Value)
			fw.completedTasks = append(fw.completedTasks, t)
			defer m.allocateLocked()
		}
	}
	if st.AgentID == nil {
		st.AgentID = &mesos.AgentID{Value: agentID}
	}
	fw.send(&scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}})
}

// MasterInfo describes this master as Mesos does in ZooKeeper and state.
func (m *Master) MasterInfo() *mesos.MasterInfo { return m.masterInfo() }

func (m *Master) masterInfo() *mesos.MasterInfo {
	host, port := splitAddr(m.cfg.ListenAddr)
	hostname := m.cfg.Hostname
	if hostname == "" {
		hostname = host
	}
	ip := ipv4ToUint32(host)
	ver := Version
	return &mesos.MasterInfo{
		ID: m.id, IP: ip, Port: proto.Uint32(uint32(port)), PID: proto.String("master@" + m.cfg.ListenAddr),
		Hostname: &hostname, Version: &ver,
		Address: &mesos.Address{Hostname: &hostname, IP: proto.String(host), Port: int32(port)},
	}
}
