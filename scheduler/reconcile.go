package scheduler

import (
	"context"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Task reconciliation with Mesos, on Aurora's schedule: the first one
// ReconcileInitialDelay after the scheduler starts, then explicit
// reconciliations every ReconcileExplicitInterval and implicit ones every
// ReconcileImplicitInterval, the implicit ones ReconcileScheduleSpread
// behind. Once the initial delay has passed, every (re)registration also
// reconciles at once (onSubscribed), so that a scheduler restarted after
// kill -9 learns the tasks' states straight away; a periodic run that
// comes due while the scheduler is not registered is left to that.

// reconcileSchedule is when the next periodic reconciliations are due.
type reconcileSchedule struct {
	first                        time.Time // the end of the initial delay
	explicitEvery, implicitEvery time.Duration
	nextExplicit, nextImplicit   time.Time
}

func newReconcileSchedule(cfg Config, start time.Time) reconcileSchedule {
	first := start.Add(cfg.ReconcileInitialDelay)
	return reconcileSchedule{
		first: first, explicitEvery: cfg.ReconcileExplicitInterval, implicitEvery: cfg.ReconcileImplicitInterval,
		nextExplicit: first, nextImplicit: first.Add(cfg.ReconcileScheduleSpread),
	}
}

// due reports which reconciliations are due at now, and moves each due
// one to its next time after now (runs missed meanwhile are not made up).
func (r *reconcileSchedule) due(now time.Time) (explicit, implicit bool) {
	advance := func(next *time.Time, every time.Duration) bool {
		if now.Before(*next) {
			return false
		}
		for !now.Before(*next) {
			*next = next.Add(every)
		}
		return true
	}
	return advance(&r.nextExplicit, r.explicitEvery), advance(&r.nextImplicit, r.implicitEvery)
}

// next is when the next reconciliation is due.
func (r *reconcileSchedule) next() time.Time {
	if r.nextImplicit.Before(r.nextExplicit) {
		return r.nextImplicit
	}
	return r.nextExplicit
}

// reconcileLoop runs the periodic reconciliations.
func (s *Scheduler) reconcileLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		now := s.cfg.Now()
		explicit, implicit := s.recon.due(now)
		wait := s.recon.next().Sub(now)
		registered := s.registered
		s.mu.Unlock()
		if registered {
			if explicit {
				s.reconcileExplicit(ctx, s.cfg.ReconcileExplicitBatchSize)
			}
			if implicit {
				s.reconcileImplicit(ctx)
			}
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// agentTasks maps the id of every task the store places on an agent to
// that agent. The caller holds s.mu.
func (s *Scheduler) agentTasks() map[string]string {
	tasks := map[string]string{}
	for _, t := range s.tasks {
		if st, _ := state.ParseStatus(t.Status); st.SlaveAssigned() && t.AssignedTask.SlaveID != "" {
			tasks[t.AssignedTask.TaskID] = t.AssignedTask.SlaveID
		}
	}
	return tasks
}

// reconcileExplicit asks Mesos for the state of every task the store
// places on an agent, batchSize tasks per RECONCILE call, the calls
// ReconcileExplicitBatchInterval apart: the first one at once, the others
// in the background. It returns the number of tasks and of calls.
func (s *Scheduler) reconcileExplicit(ctx context.Context, batchSize int) (int, int) {
	s.mu.Lock()
	tasks := s.agentTasks()
	s.explicitReconciliations++
	s.mu.Unlock()
	ids := sortedKeys(tasks)
	var batches []map[string]string
	for len(ids) > 0 {
		n := min(batchSize, len(ids))
		batch := map[string]string{}
		for _, id := range ids[:n] {
			batch[id] = tasks[id]
		}
		ids = ids[n:]
		batches = append(batches, batch)
	}
	send := func(b map[string]string) { s.send(ctx, calls.Reconcile(calls.ReconcileTasks(b))) }
	interval := s.cfg.ReconcileExplicitBatchInterval
	if interval <= 0 || len(batches) <= 1 {
		for _, b := range batches {
			send(b)
		}
		return len(tasks), len(batches)
	}
	send(batches[0])
	s.life.goFunc(func() {
		for _, b := range batches[1:] {
			select {
			case <-ctx.Done():
				return
			case <-s.life.ctx.Done():
				return
			case <-s.after(interval):
			}
			send(b)
		}
	})
	return len(tasks), len(batches)
}
