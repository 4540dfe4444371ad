package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// schedulerName is stamped on the task events this scheduler writes.
const schedulerName = "aurorabox"

// txn collects one batch of task changes: they are written to the store in
// one fsynced update, and only then are the Mesos calls they imply (kills)
// sent and the caller answered.
type txn struct {
	s      *Scheduler
	now    time.Time
	dirty  map[string]bool
	delete map[string]bool
	jobs   []api.JobConfiguration // cron job templates to store
	kills  []string
	timers []state.Timer
	// maint are hosts whose maintenance mode changed (already applied to
	// s.maintenance), stored with the batch.
	maint map[string]match.MaintenanceMode
	// updates are the job updates changed by the batch, and pruned the
	// ended ones it forgets (see updates.go).
	updates map[string]*jobUpdate
	pruned  []string
}

// setMaintenance changes a host's maintenance mode in memory and records
// it for the batch's store write. NONE forgets the host.
func (tx *txn) setMaintenance(host string, mode match.MaintenanceMode) {
	s := tx.s
	if mode == match.ModeNone || mode == "" {
		delete(s.maintenance, host)
	} else {
		s.maintenance[host] = mode
	}
	if tx.maint == nil {
		tx.maint = map[string]match.MaintenanceMode{}
	}
	tx.maint[host] = mode
}

// begin starts a batch. Its time is a whole millisecond, as the task
// events it writes are stored: a timer armed for an event (whose Since is
// the event's time) must find the same time in the stored task when it
// fires, or it is stale and never moves the task on.
func (s *Scheduler) begin() *txn {
	return &txn{s: s, now: s.cfg.Now().Truncate(time.Millisecond), dirty: map[string]bool{}, delete: map[string]bool{}}
}

// commit writes the batch; the caller holds s.mu. On failure the in-memory
// state is reloaded from the store, so memory never runs ahead of disk.
func (tx *txn) commit() error {
	s := tx.s
	tx.settleDrains()
	err := s.store.Update(func(w *storage.Writer) error {
		for h, m := range tx.maint {
			if err := w.SetMaintenance(h, string(m)); err != nil {
				return err
			}
		}
		for _, j := range tx.jobs {
			if err := w.SaveJob(j); err != nil {
				return err
			}
		}
		for id := range tx.delete {
			if err := w.DeleteTask(id); err != nil {
				return err
			}
		}
		for id := range tx.dirty {
			if t, ok := s.tasks[id]; ok && !tx.delete[id] {
				if err := w.SaveTask(*t); err != nil {
					return err
				}
			}
		}
		return tx.writeUpdates(w)
	})
	if err != nil {
		s.log.Error("storage write failed; reloading", "err", err)
		s.reload()
		return err
	}
	tx.updatesWritten()
	for _, tm := range tx.timers {
		s.arm(tm)
	}
	return nil
}

// reload replaces the in-memory jobs, tasks, quotas, maintenance modes
// and job updates with the store's.
func (s *Scheduler) reload() {
	snap, err := s.store.Load()
	if err != nil {
		s.log.Error("storage unreadable", "err", err)
		return
	}
	s.loadSnapshot(snap)
}

// loadSnapshot makes the store's contents the in-memory state.
func (s *Scheduler) loadSnapshot(snap *storage.Snapshot) {
	s.cronJobs = map[api.JobKey]*api.JobConfiguration{}
	s.tasks = map[string]*api.ScheduledTask{}
	s.quotas = map[string]api.ResourceAggregate{}
	s.maintenance = map[string]match.MaintenanceMode{}
	for i := range snap.Jobs {
		if snap.Jobs[i].CronSchedule != "" {
			s.cronJobs[snap.Jobs[i].Key] = &snap.Jobs[i]
		}
	}
	for i := range snap.Tasks {
		s.tasks[snap.Tasks[i].AssignedTask.TaskID] = &snap.Tasks[i]
	}
	for role, raw := range snap.Quotas {
		var q api.ResourceAggregate
		if err := json.Unmarshal(raw, &q); err != nil {
			s.log.Error("unreadable stored quota; ignored", "role", role, "err", err)
			continue
		}
		s.quotas[role] = q.Normalize()
	}
	for host, mode := range snap.Maintenance {
		s.maintenance[host] = match.MaintenanceMode(mode)
	}
	s.loadUpdates(snap.Updates)
}

// dropStoredJobs removes from the store the configurations of jobs that
// are not cron jobs, which versions before jobs were read from their tasks
// stored (and kept after the jobs ended, so a killed job could not be
// created again). loadSnapshot already ignores them.
func (s *Scheduler) dropStoredJobs(snap *storage.Snapshot) error {
	var drop []api.JobKey
	for _, j := range snap.Jobs {
		if j.CronSchedule == "" {
			drop = append(drop, j.Key)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := s.store.Update(func(w *storage.Writer) error {
		for _, k := range drop {
			if err := w.DeleteJob(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("removing stored job configurations: %w", err)
	}
	s.log.Info("stored configurations of non-cron jobs removed; such jobs are read from their tasks", "jobs", len(drop))
	return nil
}

// sendKills asks Mesos to kill tasks, after their state is stored.
func (s *Scheduler) sendKills(ctx context.Context, ids []string) {
	for _, id := range ids {
		s.mu.Lock()
		agent := ""
		if t := s.tasks[id]; t != nil {
			agent = t.AssignedTask.SlaveID
		}
		s.mu.Unlock()
		c := calls.Kill(id, agent)
		s.send(ctx, c)
	}
}

func (s *Scheduler) machine() *state.Machine {
	return &state.Machine{Config: *s.cfg.Timings, NewTaskID: func(old state.Task) string {
		t := s.tasks[old.ID]
		k := t.AssignedTask.Task.Job
		return state.TaskID(k.Role, k.Environment, k.Name, t.AssignedTask.InstanceID, newUUID())
	}}
}

// flapCount is what a task's ancestry counts for throttling (state.Task's
// Flaps and NeverRan).
type flapCount struct{ flaps, neverRan int }

func fromMS(ms int64) time.Time { return time.Unix(0, ms*int64(time.Millisecond)) }

// machineTask is the state machine's view of a stored task.
func (s *Scheduler) machineTask(t *api.ScheduledTask) state.Task {
	st, _ := state.ParseStatus(t.Status)
	mt := state.Task{
		ID: t.AssignedTask.TaskID, AncestorID: t.AncestorID, Status: st, IsService: t.AssignedTask.Task.IsService,
		MaxTaskFailures: t.AssignedTask.Task.MaxTaskFailures, FailureCount: t.FailureCount,
		Flaps: s.flaps[t.AssignedTask.TaskID].flaps, NeverRan: s.flaps[t.AssignedTask.TaskID].neverRan,
	}
	if p := t.AssignedTask.Task.PartitionPolicy; p != nil {
		mt.PartitionPolicy = &state.PartitionPolicy{Reschedule: p.Reschedule, Delay: time.Duration(p.DelaySecs) * time.Second}
	}
	for _, e := range t.TaskEvents {
		es, _ := state.ParseStatus(e.Status)
		mt.Events = append(mt.Events, state.TaskEvent{Time: fromMS(e.Timestamp), Status: es, Message: e.Message})
	}
	return mt
}

// transition moves a task to status to, applying every side effect to the
// batch. It reports whether the machine allowed it.
func (tx *txn) transition(id string, to state.Status, msg string) state.Outcome {
	s := tx.s
	t := s.tasks[id]
	if t == nil {
		return state.Illegal
	}
	r := s.machine().Transition(s.machineTask(t), to, state.Event{Time: tx.now, Message: msg})
	tx.apply(r)
	return r.Outcome
}

// apply performs a machine result's actions on the in-memory state.
func (tx *txn) apply(r state.Result) {
	s := tx.s
	for _, a := range r.Actions {
		t := s.tasks[a.TaskID]
		switch a.Kind {
		case state.SaveState:
			if t == nil {
				continue
			}
			t.Status = a.To.String()
			t.TaskEvents = append(t.TaskEvents, api.TaskEvent{Timestamp: nowMS(a.Time), Status: a.To.String(), Message: a.Message, Scheduler: schedulerName})
			tx.dirty[a.TaskID] = true
		case state.IncrementFailures:
			if t != nil {
				t.FailureCount = a.Failures
				tx.dirty[a.TaskID] = true
			}
		case state.Reschedule:
			if t == nil || a.Replacement == nil {
				continue
			}
			rep := a.Replacement
			nt := &api.ScheduledTask{
				AssignedTask: api.AssignedTask{TaskID: rep.ID, Task: t.AssignedTask.Task, InstanceID: t.AssignedTask.InstanceID, AssignedPorts: map[string]int{}},
				Status:       rep.Status.String(), FailureCount: rep.FailureCount, AncestorID: rep.AncestorID,
			}
			for _, e := range rep.Events {
				nt.TaskEvents = append(nt.TaskEvents, api.TaskEvent{Timestamp: nowMS(e.Time), Status: e.Status.String(), Message: e.Message, Scheduler: schedulerName})
			}
			s.tasks[rep.ID] = nt
			if rep.Flaps > 0 || rep.NeverRan > 0 {
				s.flaps[rep.ID] = flapCount{flaps: rep.Flaps, neverRan: rep.NeverRan}
			}
			tx.dirty[rep.ID] = true
		case state.KillTask:
			tx.kills = append(tx.kills, a.TaskID)
		case state.Delete:
			delete(s.tasks, a.TaskID)
			delete(s.flaps, a.TaskID)
			tx.delete[a.TaskID] = true
		case state.Schedule:
			tx.timers = append(tx.timers, a.Timer)
		}
	}
}

// arm sets a state machine timer: when due, the machine decides what it
// means for the task then (it may have moved on).
func (s *Scheduler) arm(tm state.Timer) {
	d := max(tm.At.Sub(s.cfg.Now()), 0)
	s.life.afterFunc(d, func() {
		s.mu.Lock()
		t := s.tasks[tm.TaskID]
		if t == nil {
			s.mu.Unlock()
			return
		}
		tx := s.begin()
		r := s.machine().Fire(s.machineTask(t), tm, tx.now)
		tx.apply(r)
		err := tx.commit()
		s.mu.Unlock()
		if err == nil {
			s.sendKills(s.life.ctx, tx.kills)
			s.wake()
		}
	})
}

// rearm arms the timers of every stored task, after a restart.
func (s *Scheduler) rearm() {
	m := s.machine()
	for _, t := range s.tasks {
		for _, tm := range m.Timers(s.machineTask(t)) {
			s.arm(tm)
		}
	}
}

// onSubscribed records the framework id and, once the initial
// reconciliation delay has passed, reconciles: explicitly for every task
// the store places on an agent, then implicitly, so that Mesos reports
// anything we do not know about (which gets killed).
func (s *Scheduler) onSubscribed(ctx context.Context, id string) error {
	s.mu.Lock()
	if s.frameworkID != id {
		if err := s.store.Update(func(w *storage.Writer) error { return w.SetFrameworkID(id) }); err != nil {
			s.mu.Unlock()
			return err
		}
		s.frameworkID = id
	}
	s.registered = true
	if !s.active {
		s.active = true
		close(s.activeCh)
	}
	reconcile := !s.cfg.Now().Before(s.recon.first)
	s.mu.Unlock()
	if reconcile {
		n, _ := s.reconcileExplicit(ctx, s.cfg.ReconcileExplicitBatchSize)
		s.log.Info("framework subscribed", "framework_id", id, "reconciling", n)
		s.reconcileImplicit(ctx)
	} else {
		s.log.Info("framework subscribed; reconciliation after its initial delay", "framework_id", id, "at", s.recon.first)
	}
	s.wake()
	return nil
}

// onUpdate applies a Mesos status update, stores it, then acknowledges it.
func (s *Scheduler) onUpdate(ctx context.Context, st mesos.TaskStatus) {
	id := st.TaskID.Value
	to, err := state.FromMesos(s.mesosState(st).String())
	s.mu.Lock()
	if st.GetReason() == mesos.REASON_RECONCILIATION {
		s.reconcileUpdates++
	}
	t := s.tasks[id]
	var tx *txn
	switch {
	case err != nil:
		s.log.Warn("unknown Mesos task state", "task", id, "state", st.GetState())
	case t == nil:
		// A task we do not know (pruned, or from before a restore): Mesos
		// keeps it running unless we kill it.
		if !to.Terminal() {
			s.mu.Unlock()
			s.log.Warn("killing a task unknown to the scheduler", "task", id)
			s.send(ctx, calls.Kill(id, st.GetAgentID().GetValue()))
			s.ack(ctx, st)
			return
		}
	default:
		tx = s.begin()
		msg := st.GetMessage()
		if msg == "" && st.Reason != nil {
			msg = st.GetReason().String()
		}
		tx.transition(id, to, msg)
		if tx.commit() != nil {
			s.mu.Unlock()
			return // not acknowledged: Mesos will send it again
		}
	}
	s.mu.Unlock()
	if tx != nil {
		s.sendKills(ctx, tx.kills)
	}
	s.ack(ctx, st)
	s.wake()
}

// mesosState is a status update's state as the scheduler takes it: without
// partition awareness there is no PARTITIONED, and the states a
// partition-aware framework gets for an unreachable agent's tasks are
// what Mesos sends the others, TASK_LOST.
func (s *Scheduler) mesosState(st mesos.TaskStatus) mesos.TaskState {
	ms := st.GetState()
	if s.cfg.DisablePartitionAware && (ms == mesos.TASK_UNREACHABLE || ms == mesos.TASK_UNKNOWN) {
		return mesos.TASK_LOST
	}
	return ms
}

func (s *Scheduler) ack(ctx context.Context, st mesos.TaskStatus) {
	if len(st.UUID) == 0 || st.AgentID == nil {
		return // reconciliation answers are not acknowledged
	}
	s.send(ctx, calls.Acknowledge(st.AgentID.Value, st.TaskID.Value, st.UUID))
}
