// Package planner is the pure decision core of the Thermos-equivalent task
// runner: given a task's processes and the events that happened to them, it
// says which processes to fork or signal next and what state the task and each
// process are in.
//
// It does no IO, reads no clock and starts no goroutines. Every input carries
// an explicit timestamp, so the same inputs always give the same states and
// decisions, and a checkpoint of the inputs is enough to rebuild a planner
// after a restart. A Planner is not safe for concurrent use.
//
// # States
//
// ProcessState and TaskState are Thermos's (thermos_internal.thrift), with the
// same numeric values and names; they marshal to JSON as the upper-case names.
// A process's state is the state of the process as a whole: WAITING means it
// will run (again) once its order dependencies, min_duration and
// max_concurrency allow; FORKED and RUNNING describe the current run; SUCCESS
// and FAILED are final for that process; KILLED (and, for a process lost while
// being terminated, LOST) mean the run ended during teardown. Each run keeps
// its own state in ProcessStatus.Runs, as Thermos's per-run ProcessStatus does.
//
// # The executor's loop
//
//	p, _ := planner.New(task, now)          // or planner.Replay after a restart
//	for !p.TaskState().Terminal() {
//		d := p.Next(now)
//		if d.Tick != nil { append *d.Tick to the checkpoint }
//		for _, a := range d.Actions {
//			switch a.Kind {
//			case planner.Fork:        fork; then Apply a "forked" record
//			case planner.Term:        SIGTERM the process tree of a.Process/a.Run
//			case planner.KillTree:    SIGKILL that process tree
//			case planner.TermOrphans: SIGTERM every orphan reparented to the executor
//			case planner.KillOrphans: SIGKILL them
//			}
//		}
//		wait for a process event, a kill request, or d.Wake (if not zero);
//		Apply the matching record, and append it to the checkpoint if Apply succeeded.
//	}
//	// Call Next once more: it hands out the last KillTree/KillOrphans actions.
//
// Next hands out forks from the current state and does not change it, so
// calling Next again before the fork is reported returns the same forks. The
// executor therefore reports every fork it performs (Forked, or Apply of a
// "forked" record) before calling Next again. A "forked" record is only
// accepted for a fork that Next would return at that time (right plan, right
// run number, dependencies finished, min_duration over, max_concurrency not
// exceeded); if it is refused the forked process is not tracked and the
// executor should kill it. Signal actions (Term, KillTree, TermOrphans,
// KillOrphans) are handed out once. A planner rebuilt by Replay hands them out
// again for runs that have not exited, because a restarted executor cannot know
// which signals were delivered; the executor must check that a pid is still the
// process it forked before signalling it.
//
// Next changes the state on its own in one case: when the finalization
// deadline has passed. The transition is then stamped with the deadline
// itself, not with the time Next was called, and Next returns a "tick" record
// (Decision.Tick) that the executor appends to the checkpoint, so that a reader
// of the checkpoint sees the terminal state too. Any later record would
// reproduce the transition as well, so a lost tick only delays it until then.
//
// The planner does not detect LOST processes by itself: the executor decides
// that a process is lost (for example forked but not running after 60 s, as
// Thermos does) and reports it with Lost.
//
// # Checkpoint format
//
// The checkpoint is the planner's input, one JSON object per line (see
// EncodeRecord and DecodeRecords), in the order the events were applied:
//
//	{"time":"2024-05-01T10:00:00.5Z","kind":"forked","process":"main","run":0,"pid":4242}
//	{"time":"2024-05-01T10:00:00.6Z","kind":"started","process":"main","run":0,"pid":4242,"pid_start":81234}
//	{"time":"2024-05-01T10:00:09Z","kind":"exited","process":"main","run":0,"exit_code":0}
//	{"time":"2024-05-01T10:00:09.1Z","kind":"lost","process":"side","run":3}
//	{"time":"2024-05-01T10:01:00Z","kind":"kill","grace":"1m0s"}
//	{"time":"2024-05-01T10:01:00Z","kind":"lose"}
//	{"time":"2024-05-01T10:01:30Z","kind":"tick"}
//
// Fields: time (RFC 3339 with nanoseconds, required), kind (forked, started,
// exited, lost, kill, lose, tick), process and run (process events only),
// exit_code (exited only), pid and pid_start (optional; written by the
// executor for the observer and for its own recovery, ignored by the planner:
// the process's id and its start time in clock ticks since boot, field 22 of
// /proc/<pid>/stat; older checkpoints have no pid_start) and grace (kill
// only; a Go duration).
// Replay(task, created, records) rebuilds the planner: the task and creation
// time are not in the records, the executor stores them beside the checkpoint.
// Records whose time is earlier than an already applied one are treated as
// happening at that earlier record's time, so a wall clock stepping back
// cannot reorder the history. DecodeRecords drops a torn last line (one
// without a trailing newline that does not parse), which is what a crash in
// the middle of an append leaves behind.
//
// # Semantics
//
// The rules are those of Thermos's runner and TaskPlanner (reference section
// 11.2). A regular plan (non-final processes) runs while the task is ACTIVE
// and a finalizing plan (final processes) while it is FINALIZING. A process
// runs when the processes ordered before it have finished, min_duration has
// passed since its last exit (a loss does not restart that wait, as in
// Thermos) and max_concurrency allows. Exit 0 finishes a process, or makes a
// daemon runnable again. A failed run is retried until max_failures is reached
// (0: forever); the process has then FAILED, and an ephemeral one counts as
// finished, so its dependants still run and the task's health ignores it. A
// lost run is retried at once and is not a failure. The end of a process's
// 100th run (successes, failures and losses), whatever its outcome, marks it
// FAILED (Thermos's CappedTaskPlanner). The task is healthy while fewer than
// max_failures regular processes have failed (0: unlimited) and the regular
// plan is not deadlocked.
//
// A plan is deadlocked when it is not complete but none of its non-ephemeral
// processes is alive or can ever run again. Unlike Thermos, live ephemeral
// processes do not hide a deadlock: nothing that completion waits for may
// depend on them, so Thermos would only wait for them forever (or until the
// deadline, in FINALIZING).
//
// ACTIVE ends when every non-ephemeral regular process has finished or failed,
// or as soon as the task is unhealthy. That decides the outcome (SUCCESS if
// healthy, else FAILED) and the deadline (that moment plus finalization_wait).
// A regular plan of only ephemeral processes is complete at once, so they
// never run (Thermos would start them and stop them again). CLEANING asks
// every live process, ephemeral ones included, and every orphan to terminate,
// and waits until the processes have exited; it cannot see orphans, so it does
// not wait for them. FINALIZING runs the final plan until it is complete or
// deadlocked; failures of final processes do not change the outcome, as in
// Thermos. The task then ends, and final processes still alive (ephemeral
// ones) are killed, as Thermos does. If the deadline passes in CLEANING or
// FINALIZING, the task ends at once: live process trees and orphans are
// killed, and final processes that have not run never will. Orphans are not
// killed when the task ends in time: they had their SIGTERM in CLEANING, and a
// SIGKILL right behind it would defeat it; whatever is left is for the
// executor's own teardown. A run that exits after it was asked to terminate is
// KILLED, whatever its exit code, and is not a failure.
//
// Kill(now, grace) forces the outcome to KILLED and goes to CLEANING from
// ACTIVE; the deadline becomes now+grace, or stays the earlier current deadline
// (a kill never extends it; Thermos would replace it). Final processes still
// run within that deadline. The Thermos runner uses 60 s; the executor passes
// whatever its teardown escalation (reference section 6.3) leaves for it.
// Lose(now) forces LOST with a deadline of now: everything is killed at once
// and no final process runs. Both are ignored once the task is terminal.
package planner
