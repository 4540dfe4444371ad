package scheduler

import (
	"context"
	"sort"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// Task history pruning (§5.3), as Aurora's: a terminal task is deleted
// HistoryPruneThreshold after it ended, and sooner when its job has more
// than HistoryMaxPerJob terminal tasks: the oldest beyond that many go as
// soon as they have been terminal for HistoryMinRetention, which no task
// is deleted before. Pruning never ends a job: a job whose tasks are all
// terminal already no longer exists (state.JobExists); pruning only
// forgets its history.

// Task history defaults, the same in both timing profiles.
const (
	DefaultHistoryPruneThreshold = 2 * 24 * time.Hour
	DefaultHistoryMaxPerJob      = 100
	DefaultHistoryMinRetention   = time.Hour
)

// historyCheckInterval is the longest the history loop sleeps.
const historyCheckInterval = time.Minute

// historyLoop prunes the task history whenever something is due, looking
// at least every historyCheckInterval.
func (s *Scheduler) historyLoop(ctx context.Context) {
	for {
		_, next := s.pruneHistory()
		wait := historyCheckInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// ended is when a terminal task ended: its latest event.
func ended(t *api.ScheduledTask) time.Time {
	if n := len(t.TaskEvents); n > 0 {
		return fromMS(t.TaskEvents[n-1].Timestamp)
	}
	return time.Time{}
}

// pruneHistory deletes the terminal tasks whose time has come, in one
// stored batch. It returns how many tasks
// it deleted and when the next one may go (zero: no terminal task).
func (s *Scheduler) pruneHistory() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	byJob := map[api.JobKey][]*api.ScheduledTask{}
	for _, t := range s.tasks {
		if st, _ := state.ParseStatus(t.Status); st.Terminal() {
			k := t.AssignedTask.Task.Job
			byJob[k] = append(byJob[k], t)
		}
	}
	var prune []string
	var next time.Time
	later := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	for _, tasks := range byJob {
		// Newest first.
		sort.Slice(tasks, func(i, j int) bool {
			a, b := ended(tasks[i]), ended(tasks[j])
			if !a.Equal(b) {
				return a.After(b)
			}
			return tasks[i].AssignedTask.TaskID > tasks[j].AssignedTask.TaskID
		})
		for i, t := range tasks {
			end := ended(t)
			due := end.Add(s.cfg.HistoryPruneThreshold)
			if i >= s.cfg.HistoryMaxPerJob {
				due = end
			}
			if min := end.Add(s.cfg.HistoryMinRetention); due.Before(min) {
				due = min
			}
			if now.Before(due) {
				later(due)
				continue
			}
			prune = append(prune, t.AssignedTask.TaskID)
		}
	}
	if len(prune) == 0 {
		return 0, next
	}
	sort.Strings(prune)
	tx := s.begin()
	n := s.deleteTasks(tx, prune)
	if err := tx.commit(); err != nil {
		return 0, next
	}
	s.log.Info("task history pruned", "tasks", n)
	return n, next
}

// deleteTasks deletes terminal tasks. It returns how many it deleted. The
// caller holds s.mu.
func (s *Scheduler) deleteTasks(tx *txn, ids []string) int {
	n := 0
	for _, id := range ids {
		if tx.transition(id, state.Deleted, "") == state.Success {
			n++
		}
	}
	return n
}
