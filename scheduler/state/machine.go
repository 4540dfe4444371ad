package state

import (
	"fmt"
	"time"
)

// Audit messages that Aurora writes with the state changes it makes itself.
const (
	MsgTimedOut           = "Task timed out"
	MsgPartitionedTooLong = "Task partitioned for too long."
	MsgPartitionedToLost  = "Action performed on partitioned task, marking as LOST."
	MsgRescheduled        = "Rescheduled"
)

// Task is what the state machine knows of one Aurora task (a ScheduledTask).
// The rest of the task (job key, instance, config, assigned agent) stays with
// the caller, who copies it into a replacement.
type Task struct {
	ID         string
	AncestorID string // the task this one replaced, if any
	Status     Status // Deleted for a task that is not in the store
	IsService  bool
	// MaxTaskFailures is the job's max_task_failures; -1 is unlimited.
	MaxTaskFailures int
	FailureCount    int
	// PartitionPolicy is the job's partition_policy; nil means Aurora's
	// default, reschedule after 0 s.
	PartitionPolicy *PartitionPolicy
	// Flaps is the number of consecutive flapping tasks (see Config.Flapped)
	// in this task's ancestry, counting from its ancestor; it decides how long
	// the task is THROTTLED.
	Flaps int
	// NeverRan is the number of consecutive tasks in this task's ancestry
	// that flapped without ever reaching RUNNING (see Config.NeverRan),
	// counting from its ancestor; with Flaps it decides how long the task
	// is THROTTLED (Config.Penalty).
	NeverRan int
	// Events is the status history, oldest first, as Aurora's taskEvents.
	// Transition appends to it. Flapping detection and the "had been
	// KILLING" rule read it, and timers are measured from its last entry.
	Events []TaskEvent
}

// PartitionPolicy says what happens to a PARTITIONED task: with Reschedule it
// becomes LOST (and is replaced) after Delay; without, it stays PARTITIONED
// until its agent comes back or someone acts on it.
type PartitionPolicy struct {
	Reschedule bool
	Delay      time.Duration
}

// TaskEvent is one entry of a task's status history.
type TaskEvent struct {
	Time    time.Time
	Status  Status
	Message string
}

// LastEventTime is the time of the task's latest event (zero if none).
func (t Task) LastEventTime() time.Time {
	if len(t.Events) == 0 {
		return time.Time{}
	}
	return t.Events[len(t.Events)-1].Time
}

func (t Task) clone() Task {
	t.Events = append([]TaskEvent(nil), t.Events...)
	if t.PartitionPolicy != nil {
		p := *t.PartitionPolicy
		t.PartitionPolicy = &p
	}
	return t
}

// wasKilling reports whether a kill was requested for the task.
func (t Task) wasKilling() bool {
	for _, e := range t.Events {
		if e.Status == Killing {
			return true
		}
	}
	return false
}

// Event is the circumstances of a requested state change.
type Event struct {
	Time    time.Time // when it happened; stamped on the task event
	Message string    // audit message stored with the new status
}

// ActionKind says what the caller must do for a transition.
type ActionKind int

// Action kinds. Perform them in the order they are listed in Result.Actions.
const (
	// SaveState: the task Action.TaskID moved From -> To; persist the status
	// and append the task event (Action.Message).
	SaveState ActionKind = iota + 1
	// IncrementFailures: the task's failure count is now Action.Failures.
	IncrementFailures
	// Reschedule: insert Action.Replacement, a new task for the same instance
	// with the config of Action.TaskID. It is already in its first status
	// (To: PENDING, or THROTTLED while it is penalized for flapping) with its
	// first event; From is INIT.
	Reschedule
	// KillTask: ask Mesos to kill the task Action.TaskID.
	KillTask
	// Delete: remove the task Action.TaskID from the store. From -> To is the
	// transition that removed it (PENDING/THROTTLED -> KILLING, or -> DELETED).
	Delete
	// Schedule: arm Action.Timer, and call Machine.Fire when it is due.
	Schedule
)

var actionKindNames = map[ActionKind]string{
	SaveState: "save_state", IncrementFailures: "increment_failures", Reschedule: "reschedule",
	KillTask: "kill_task", Delete: "delete", Schedule: "schedule",
}

func (k ActionKind) String() string {
	if n, ok := actionKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one side effect of a transition, as data.
type Action struct {
	Kind        ActionKind
	TaskID      string
	From, To    Status    // SaveState, Reschedule, Delete
	Time        time.Time // SaveState, Reschedule: the time of the new task event
	Message     string    // SaveState, Reschedule
	Failures    int       // IncrementFailures: the new count
	Replacement *Task     // Reschedule
	Timer       Timer     // Schedule
}

// TimerKind names what a timer does when it fires.
type TimerKind int

// Timer kinds.
const (
	// TransientTimeout moves a task that stayed too long in a transient
	// status (see Status.Transient) to LOST ("Task timed out").
	TransientTimeout TimerKind = iota + 1
	// ThrottleEnd moves a THROTTLED task to PENDING.
	ThrottleEnd
	// PartitionLost moves a PARTITIONED task whose partition policy
	// reschedules to LOST ("Task partitioned for too long.").
	PartitionLost
)

var timerKindNames = map[TimerKind]string{
	TransientTimeout: "timeout", ThrottleEnd: "throttle_end", PartitionLost: "partition_lost",
}

func (k TimerKind) String() string {
	if n, ok := timerKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("TimerKind(%d)", int(k))
}

// Timer is a delayed state change. It applies only while the task is still
// in Status and its latest event is still the one at Since; otherwise the task
// has moved on and the timer is stale.
type Timer struct {
	Kind   TimerKind
	TaskID string
	At     time.Time
	Status Status
	Since  time.Time
}

// Outcome is how a requested state change went (Aurora's StateChangeResult).
type Outcome int

// Outcomes.
const (
	// Success: the task moved; Actions say what to do.
	Success Outcome = iota + 1
	// Noop: the task already had the requested status; nothing to do.
	Noop
	// Illegal: §5.2 does not allow the transition. The task is unchanged and
	// the request should be logged and ignored, except for Actions, which can
	// only hold a KillTask (for example a status update that would revive a
	// terminal or deleted task).
	Illegal
	// Stale: a timer fired that no longer applies (or before it was due).
	Stale
)

var outcomeNames = map[Outcome]string{Success: "success", Noop: "noop", Illegal: "illegal", Stale: "stale"}

func (o Outcome) String() string {
	if n, ok := outcomeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome of one requested state change.
type Result struct {
	Outcome Outcome
	// Task is the task afterwards: what the store holds once Actions are
	// performed (Status Deleted if it was removed).
	Task    Task
	Actions []Action
}

// transitions is the table of reference section 5.2
// (scheduler/state/TaskStateMachine.java).
var transitions = map[Status][]Status{
	Init:        {Pending, Throttled},
	Pending:     {Assigned, Killing},
	Throttled:   {Pending, Killing},
	Assigned:    {Starting, Running, Finished, Failed, Restarting, Draining, Killed, Killing, Lost, Preempting},
	Starting:    {Running, Finished, Failed, Restarting, Draining, Killing, Killed, Lost, Preempting, Partitioned},
	Running:     {Finished, Restarting, Draining, Failed, Killing, Killed, Lost, Preempting, Partitioned},
	Partitioned: {Lost, Failed, Finished, Running, Assigned, Starting, Restarting, Draining, Preempting, Killing},
	Preempting:  {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Restarting:  {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Draining:    {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Killing:     {Finished, Failed, Killed, Lost, Deleted, Partitioned},
	Finished:    {Deleted},
	Failed:      {Deleted},
	Killed:      {Deleted},
	Lost:        {Deleted},
}

// Transitions returns the statuses a task in from may move to (Deleted
// included), as listed in reference section 5.2.
func Transitions(from Status) []Status {
	return append([]Status(nil), transitions[from]...)
}

// Allowed reports whether §5.2 allows a task to move from -> to.
func Allowed(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Machine applies Aurora's task state machine. It holds no task state: each
// call takes one task and returns the task afterwards and the side effects.
// It does no IO and reads no clock.
type Machine struct {
	Config Config
	// NewTaskID returns the id of the replacement of a task (typically
	// TaskID(role, env, job, instance, a new UUID)). It must be set when a
	// transition can reschedule; Transition panics otherwise.
	NewTaskID func(replaced Task) string
}

// effects are the side effects Aurora's TaskStateMachine attaches to a
// transition attempt. The per-state callbacks run for illegal attempts too,
// which is how a revived terminal task gets killed.
type effects struct {
	incrementFailures, reschedule, kill, toLost, delete bool
}

func effectsOf(t Task, from, to Status) effects {
	var e effects
	failure := func() {
		e.incrementFailures = true
		e.reschedule = t.IsService || t.MaxTaskFailures == -1 || t.FailureCount < t.MaxTaskFailures-1
	}
	switch from {
	case Pending, Throttled:
		// A task that was never placed is removed instead of becoming KILLED.
		e.delete = to == Killing
	case Assigned, Starting, Running:
		switch to {
		case Finished:
			e.reschedule = t.IsService
		case Failed:
			failure()
		case Preempting, Restarting, Draining, Killing:
			e.kill = true
		case Killed:
			e.reschedule = true
		case Lost:
			e.reschedule = true
			e.kill = from == Assigned
		}
	case Partitioned:
		switch to {
		case Lost:
			e.kill = true
			e.reschedule = !t.wasKilling()
		case Killing, Restarting, Draining, Preempting:
			// Acting on a partitioned task makes it LOST at once, so that an
			// unreachable agent cannot block the action.
			e.toLost = true
		case Failed:
			failure()
		}
	case Preempting, Restarting, Draining:
		switch to {
		case Assigned, Starting, Running:
			e.kill = true
		case Partitioned:
			e.toLost = true
		case Lost:
			e.kill = true
			e.reschedule = true
		case Finished, Failed, Killed:
			e.reschedule = true
		}
	case Killing, Finished, Failed, Killed, Lost, Deleted:
		switch to {
		case Partitioned:
			if from == Killing {
				e.toLost = true
			} else {
				e.kill = true
			}
		case Assigned, Starting, Running:
			e.kill = true
		case Deleted:
			e.delete = true
		}
	}
	return e
}

// Transition asks for task t to move to status to (Deleted removes it). It
// never modifies t. Transitions that Aurora chains are applied in the same
// call: acting on a PARTITIONED task, or a RESTARTING, DRAINING, PREEMPTING
// or KILLING task becoming PARTITIONED, continues to LOST.
//
// The actions come in Aurora's order for each transition: IncrementFailures,
// SaveState, Reschedule (followed by Schedule for a THROTTLED replacement),
// the chained transition's actions, KillTask, Delete; last, Schedule for the
// timers of the status the task ends in (see Timers).
func (m *Machine) Transition(t Task, to Status, ev Event) Result {
	r := Result{Task: t.clone()}
	if t.Status == to {
		r.Outcome = Noop
		return r
	}
	if !m.step(&r, to, ev.Time, ev.Message) {
		r.Outcome = Illegal
		return r
	}
	r.Outcome = Success
	for _, tm := range m.Timers(r.Task) {
		r.Actions = append(r.Actions, Action{Kind: Schedule, TaskID: tm.TaskID, Timer: tm})
	}
	return r
}

func (m *Machine) step(r *Result, to Status, now time.Time, msg string) bool {
	t := &r.Task
	from := t.Status
	e := effectsOf(*t, from, to)
	if !Allowed(from, to) {
		if e.kill {
			r.Actions = append(r.Actions, Action{Kind: KillTask, TaskID: t.ID})
		}
		return false
	}
	if e.incrementFailures {
		t.FailureCount++
		r.Actions = append(r.Actions, Action{Kind: IncrementFailures, TaskID: t.ID, Failures: t.FailureCount})
	}
	if !e.delete {
		t.Status = to
		t.Events = appendEvent(t.Events, TaskEvent{Time: now, Status: to, Message: msg})
		r.Actions = append(r.Actions, Action{Kind: SaveState, TaskID: t.ID, From: from, To: to, Time: now, Message: msg})
	}
	if e.reschedule {
		m.reschedule(r, now)
	}
	if e.toLost {
		m.step(r, Lost, now, MsgPartitionedToLost)
	}
	if e.kill {
		r.Actions = append(r.Actions, Action{Kind: KillTask, TaskID: t.ID})
	}
	if e.delete {
		t.Status = Deleted
		r.Actions = append(r.Actions, Action{Kind: Delete, TaskID: t.ID, From: from, To: to})
	}
	return true
}

// appendEvent appends e, first folding a PARTITIONED round trip
// (X, PARTITIONED, X) into the first X when e is PARTITIONED again, as
// Aurora does to keep the history of a flaky agent bounded.
func appendEvent(events []TaskEvent, e TaskEvent) []TaskEvent {
	if n := len(events); e.Status == Partitioned && n >= 3 &&
		events[n-2].Status == Partitioned && events[n-3].Status == events[n-1].Status {
		events = events[:n-2]
	}
	return append(events, e)
}

func (m *Machine) reschedule(r *Result, now time.Time) {
	old := r.Task
	if m.NewTaskID == nil {
		panic("state: Machine.NewTaskID is nil but task " + old.ID + " must be rescheduled")
	}
	flaps, neverRan := 0, 0
	if m.Config.Flapped(old.Events) {
		flaps = old.Flaps + 1
	}
	if m.Config.NeverRan(old.Events) {
		neverRan = old.NeverRan + 1
	}
	status, msg := Pending, MsgRescheduled
	if p := m.Config.Penalty(Task{Flaps: flaps, NeverRan: neverRan}); p > 0 {
		status = Throttled
		msg = fmt.Sprintf("Rescheduled, penalized for %d ms for flapping", p.Milliseconds())
		if p > m.Config.FlappingPenalty(flaps) {
			msg = fmt.Sprintf("Rescheduled, penalized for %d ms for flapping: %d task(s) in a row ended before running", p.Milliseconds(), neverRan)
		}
	}
	nt := Task{
		ID:              m.NewTaskID(old),
		AncestorID:      old.ID,
		Status:          status,
		IsService:       old.IsService,
		MaxTaskFailures: old.MaxTaskFailures,
		FailureCount:    old.FailureCount,
		PartitionPolicy: old.PartitionPolicy,
		Flaps:           flaps,
		NeverRan:        neverRan,
		Events:          []TaskEvent{{Time: now, Status: status, Message: msg}},
	}
	nt = nt.clone()
	r.Actions = append(r.Actions, Action{Kind: Reschedule, TaskID: old.ID, From: Init, To: status, Time: now, Message: msg, Replacement: &nt})
	for _, tm := range m.Timers(nt) {
		r.Actions = append(r.Actions, Action{Kind: Schedule, TaskID: tm.TaskID, Timer: tm})
	}
}

// Timers returns the timers that a task in its current status needs, measured
// from its latest event: the transient-state timeout, the end of THROTTLED,
// or the move of a PARTITIONED task to LOST under its partition policy.
// Transition schedules them itself; after a scheduler restart, call Timers
// for every stored task to arm them again (a timer whose time has passed is
// due at once).
func (m *Machine) Timers(t Task) []Timer {
	since := t.LastEventTime()
	at, ok := time.Time{}, false
	var kind TimerKind
	switch {
	case t.Status.Transient():
		kind = TransientTimeout
		at, ok = m.Config.TransientDeadline(t.Status, since)
	case t.Status == Throttled:
		kind, at, ok = ThrottleEnd, since.Add(m.Config.Penalty(t)), true
	case t.Status == Partitioned:
		if p := t.PartitionPolicy; p == nil || p.Reschedule {
			var delay time.Duration
			if p != nil {
				delay = p.Delay
			}
			kind, at, ok = PartitionLost, since.Add(delay), true
		}
	}
	if !ok {
		return nil
	}
	return []Timer{{Kind: kind, TaskID: t.ID, At: at, Status: t.Status, Since: since}}
}

// Fire applies a due timer to task t at now. The result is Stale, and
// nothing changes, if the timer is for another task, is not due yet, or the
// task has moved on (its status or its latest event is not the one the
// timer was armed for).
func (m *Machine) Fire(t Task, tm Timer, now time.Time) Result {
	if t.ID != tm.TaskID || t.Status != tm.Status || !t.LastEventTime().Equal(tm.Since) || now.Before(tm.At) {
		return Result{Outcome: Stale, Task: t.clone()}
	}
	switch tm.Kind {
	case TransientTimeout:
		return m.Transition(t, Lost, Event{Time: now, Message: MsgTimedOut})
	case ThrottleEnd:
		return m.Transition(t, Pending, Event{Time: now})
	case PartitionLost:
		return m.Transition(t, Lost, Event{Time: now, Message: MsgPartitionedTooLong})
	}
	return Result{Outcome: Stale, Task: t.clone()}
}
