// Package state is the Aurora scheduler's task state machine: the statuses a
// task goes through (ScheduleStatus), which status changes are allowed, and
// the side effects of each one (save, kill, reschedule, delete, timers), as
// in Aurora's TaskStateMachine, StateManagerImpl, TaskTimeout, TaskThrottler,
// PartitionManager and RescheduleCalculator (reference section 5).
//
// It does no IO, reads no clock, generates no ids and starts no goroutines.
// A Machine takes one task at a time and returns the task afterwards and the
// side effects as data; every input carries an explicit time. The scheduler
// around it owns the store, the Mesos driver and the timers.
//
// # The scheduler's loop
//
//	m := &state.Machine{Config: state.AuroraConfig(), NewTaskID: newID}
//	r := m.Transition(task, state.Running, state.Event{Time: now, Message: msg})
//	// or, when an armed timer is due: r = m.Fire(task, timer, now)
//	switch r.Outcome {
//	case state.Illegal: log and count the ignored request (r.Actions may still hold a KillTask)
//	case state.Stale, state.Noop: nothing to do
//	}
//	for _, a := range r.Actions {
//		switch a.Kind {
//		case state.SaveState:         store a.To and append the task event, for task a.TaskID
//		case state.IncrementFailures: store a.Failures as the failure count
//		case state.Reschedule:        insert *a.Replacement, with a.TaskID's config
//		case state.KillTask:          ask Mesos to kill a.TaskID
//		case state.Delete:            remove a.TaskID
//		case state.Schedule:          arm a.Timer; when due, Fire it
//		}
//	}
//
// r.Task is the task once the actions are done, so a store can also just
// write r.Task and the replacement. A new task is inserted in INIT and moved
// to PENDING with Transition. Status updates from Mesos are mapped with
// FromMesos and applied with Transition like any other request; user and
// operator actions are the transitions to KILLING (kill), RESTARTING
// (restartShards), DRAINING (host drain) and PREEMPTING (preemptor); DELETED
// removes a terminal or KILLING task (pruning). A kill of a task that never
// left PENDING or THROTTLED removes it too.
//
// # Rules
//
// The allowed transitions are exactly the table of reference section 5.2
// (see Allowed and Transitions). A request the table does not allow changes
// nothing and has Outcome Illegal. As in Aurora, one kind of illegal request
// still gets a KillTask: a status update saying that a task runs (ASSIGNED,
// STARTING or RUNNING) while the scheduler has it KILLING, RESTARTING,
// DRAINING, PREEMPTING, terminal or deleted, and a PARTITIONED update for a
// terminal or deleted task. Requesting the status a task already has is a
// Noop.
//
// Side effects of allowed transitions:
//   - PENDING or THROTTLED -> KILLING deletes the task (no SaveState).
//   - ASSIGNED, STARTING, RUNNING -> PREEMPTING, RESTARTING, DRAINING, KILLING
//     sends a kill. -> KILLED reschedules; -> LOST reschedules, and from
//     ASSIGNED also sends a kill; -> FINISHED reschedules a service.
//   - -> FAILED from ASSIGNED, STARTING, RUNNING or PARTITIONED increments the
//     failure count and reschedules if the task is a service, or
//     max_task_failures is -1, or the failure count before the increment is
//     less than max_task_failures minus one (so max_task_failures=3 allows
//     three failed runs).
//   - PREEMPTING, RESTARTING, DRAINING -> FINISHED, FAILED, KILLED reschedule
//     (no failure accounting: the end was asked for); -> LOST kills and
//     reschedules; -> PARTITIONED continues to LOST at once.
//   - PARTITIONED -> LOST kills, and reschedules unless a kill had been
//     requested for the task (it has a KILLING event). PARTITIONED ->
//     KILLING, RESTARTING, DRAINING, PREEMPTING continues to LOST at once,
//     so the user action is not blocked by an unreachable agent.
//   - KILLING -> PARTITIONED continues to LOST at once (and that LOST does not
//     reschedule). KILLING -> a terminal status never reschedules.
//   - -> DELETED deletes the task.
//
// A replacement is a new task (id from Machine.NewTaskID) with the same
// service flag, max_task_failures and partition policy, the failure count
// carried over and AncestorID set to the old id. It starts PENDING, or
// THROTTLED when its flapping penalty is above zero.
//
// # Timers
//
// Transition arms (Schedule actions) the timers of the status a task ends in,
// measured from its latest event (see Timers): a task in ASSIGNED,
// PREEMPTING, RESTARTING, KILLING or DRAINING (not STARTING) for
// Config.TransientTaskStateTimeout becomes LOST ("Task timed out", which
// then reschedules or not by the rules above); a THROTTLED task becomes
// PENDING after its flapping penalty; a PARTITIONED task whose partition
// policy reschedules (or that has no policy) becomes LOST after the policy's
// delay ("Task partitioned for too long."). Fire applies a due timer and is
// Stale if the task has moved on since, which replaces Aurora's
// compare-and-set on the status (the latest event's time is compared too, so
// a task that left a status and came back does not inherit an old timer).
// Only the final status of a chained transition gets timers.
//
// # Flapping
//
// A terminated task flapped (Config.Flapped) if it ran for less than
// Config.FlappingTaskThreshold, measured from its first RUNNING event (or, if
// it never ran, its latest active event) to its terminal event, and it was
// never RESTARTING, KILLING, DRAINING or PREEMPTING (Aurora does not exempt
// PREEMPTING). Task.Flaps counts the consecutive
// flapping tasks in a task's ancestry: a replacement of a task that flapped
// has Flaps = old Flaps + 1, otherwise 0 (counted even when throttling is
// disabled), and is THROTTLED for
// Config.FlappingPenalty(Flaps): 30 s, 1 min, 2 min, 4 min, then 5 min with
// Aurora's defaults, 1 s doubling up to 30 s with the dev profile's. Aurora walks the stored ancestor chain instead, which
// stops early if an ancestor has been pruned; it also decides THROTTLED from
// the ancestors of the task that ended rather than from that task itself, so
// it lets the first flap go unpenalized. This package penalizes the first
// flap (30 s), as the reference describes.
//
// # Jobs
//
// A job is its tasks: JobExists says it exists while one of them is active,
// or while it has a cron schedule (Aurora 0.11's createJob check and
// getJobs). So a transition that ends a job's last active task without a
// replacement (the end of a kill, a batch instance FINISHED, the last
// allowed FAILED) ends the job too, and its key is free again.
//
// # Differences from Aurora, on purpose
//
// ASSIGNED -> PARTITIONED is not allowed: reference section 5.2 leaves it
// out, although Aurora's code allows it (with no side effect). A task that is
// partitioned before it starts is left to the transient timeout.
package state
