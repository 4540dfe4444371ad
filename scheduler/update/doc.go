// Package update is the Aurora scheduler's job update engine (reference
// §7): the update state machine (JobUpdateStatus and its transitions, with
// pause, resume, abort, rollback and pulses), the job-level controller
// that walks the instances in groups (Queue, Batch, VariableBatch, with
// autopause), and the per-instance evaluator that decides, from an
// instance's tasks, whether to kill, add, watch or wait.
//
// Like package state it does no I/O, reads no clock and starts nothing:
// every call takes the time, and the scheduler around it stores the
// Update (plain JSON), carries out the Commands and records the events.
//
// # The scheduler's loop
//
//	u, r := update.New(settings, diff.Instances(current, desired), now, user, msg)
//	for r.Again {              // and whenever a task of the job changes, or at r.Wake
//		r = u.Evaluate(now, view) // view: each instance's tasks, as they are now
//		for _, c := range r.Commands {
//			switch c.Kind {
//			case update.AddTask:  insert a PENDING task of c.Config for c.Instance
//			case update.KillTask: kill c.TaskID (reserving its agent if c.Reserve)
//			}
//		}
//		store u, r.Events and r.InstanceEvents together with the task changes
//	}
//
// # Instances
//
// An update changes the instances of its Diff: those it adds (no task
// before, "" as Initial), removes ("" as Desired) and replaces. Rolling
// forward walks them by ascending id and rolling back in reverse; the
// Batch and VariableBatch strategies roll back batch by batch, last batch
// first, so (0,1,2) (3,4,5) (6,7,8) rolls back as (8,7,6) (5,4,3) (2,1,0).
// Queue keeps the group size of instances in flight, Batch starts a group
// when the previous one is done, VariableBatch takes its group sizes in
// turn (the last one repeats). With autopause a batch update pauses
// itself (ROLL_FORWARD_PAUSED) after every forward batch but the last.
//
// The evaluator looks at one instance whose update has started (it is
// WORKING), against the configuration wanted in the current direction:
//   - an active task of another configuration is killed (KillTask; with
//     Reserve when it is on an agent and the wanted task Fits there); one
//     already on its way out (KILLING, RESTARTING, DRAINING, PREEMPTING)
//     is waited for;
//   - with no active task left: an instance to remove is done; otherwise a
//     task of the wanted configuration is added (AddTask);
//   - the wanted task RUNNING for Settings.MinWaitInRunning makes the
//     instance done (INSTANCE_UPDATED or INSTANCE_ROLLED_BACK); RUNNING
//     for less, Evaluate asks to be woken when the watch ends (Wake); in
//     any other active status it waits for a status change;
//   - every task of the wanted configuration that ended since the instance
//     started, without its end having been asked for, is a failure; more
//     than MaxPerInstanceFailures of them fail the instance.
//
// More than MaxFailedInstances failed instances fail the direction: an
// update rolling forward rolls back if RollbackOnFailure, and otherwise
// ends FAILED, as does a failed rollback. When every instance is done (or
// failed, within the threshold) the update is ROLLED_FORWARD or
// ROLLED_BACK.
//
// # Coordinated updates
//
// With Settings.BlockIfNoPulsesAfter an update only rolls within that long
// of its latest Pulse: it starts in ROLL_FORWARD_AWAITING_PULSE, a pulse
// lets it roll, and a pulse that comes too late leaves it awaiting again
// (ROLL_BACK_AWAITING_PULSE when rolling back). A paused coordinated
// update resumes to rolling if its latest pulse is recent, else to
// awaiting a pulse.
//
// # Differences from Aurora
//
// Autopause applies to forward batches only; a rollback runs to its end.
// A failure is counted per ended task rather than per evaluation, so a
// task seen twice is one failure; and a task whose end was requested by
// maintenance or a restart is not a failure.
package update
