package update

import (
	"fmt"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/state"
)

// StrategyKind is how instances are grouped (Aurora's JobUpdateStrategy).
type StrategyKind int

// The strategies.
const (
	// Queue keeps up to the group size of instances in flight: as soon as
	// one is done, the next starts.
	Queue StrategyKind = iota
	// Batch works on a group at a time and starts the next group only when
	// the whole group is done.
	Batch
	// VariableBatch is Batch with a group size per batch; the last size
	// repeats.
	VariableBatch
)

var strategyNames = map[StrategyKind]string{Queue: "QUEUE", Batch: "BATCH", VariableBatch: "VARIABLE_BATCH"}

func (k StrategyKind) String() string {
	if n, ok := strategyNames[k]; ok {
		return n
	}
	return fmt.Sprintf("StrategyKind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k StrategyKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *StrategyKind) UnmarshalText(b []byte) error {
	for v, n := range strategyNames {
		if n == string(b) {
			*k = v
			return nil
		}
	}
	return fmt.Errorf("unknown update strategy %q", b)
}

// Strategy groups the instances of an update.
type Strategy struct {
	Kind StrategyKind `json:"kind"`
	// GroupSizes has one size for Queue and Batch, one per batch for
	// VariableBatch.
	GroupSizes []int `json:"groupSizes"`
	// Autopause pauses a Batch or VariableBatch update after each batch
	// but the last while it rolls forward (Aurora's autopauseAfterBatch).
	Autopause bool `json:"autopause,omitempty"`
}

// InvalidError is a setting the update cannot run with; the text is
// Aurora's message for the API's answer.
type InvalidError string

func (e InvalidError) Error() string { return string(e) }

// Validate checks the group sizes, with Aurora's messages.
func (s Strategy) Validate() error {
	if _, ok := strategyNames[s.Kind]; !ok {
		return InvalidError("Unknown update strategy.")
	}
	if s.Kind != VariableBatch && len(s.GroupSizes) != 1 {
		return InvalidError("Update group size must be positive.")
	}
	sum := 0
	for _, g := range s.GroupSizes {
		if g <= 0 {
			return InvalidError("Update group size must be positive.")
		}
		sum += g
	}
	if sum <= 0 {
		return InvalidError("Update group sizes must add up to a positive number.")
	}
	return nil
}

// Settings are an update's settings (Aurora's JobUpdateSettings, less
// what the caller resolves: the instance scope, SLA awareness).
type Settings struct {
	Strategy Strategy `json:"strategy"`
	// MaxPerInstanceFailures is how many times an instance's new task may
	// end before the instance has failed.
	MaxPerInstanceFailures int `json:"maxPerInstanceFailures"`
	// MaxFailedInstances is how many instances may fail before the update
	// (in its current direction) has failed.
	MaxFailedInstances int `json:"maxFailedInstances"`
	// MinWaitInRunning is how long a new task must be RUNNING before its
	// instance counts as updated.
	MinWaitInRunning time.Duration `json:"minWaitInRunning"`
	// RollbackOnFailure rolls a failed update back instead of ending it
	// FAILED.
	RollbackOnFailure bool `json:"rollbackOnFailure"`
	// BlockIfNoPulsesAfter makes the update coordinated: it acts only
	// within this long of the latest pulse. 0: not coordinated.
	BlockIfNoPulsesAfter time.Duration `json:"blockIfNoPulsesAfter,omitempty"`
}

// Instance is one instance the update changes, by configuration: Initial
// is what it ran before the update and Desired what it should run after;
// "" means no instance (an instance the update adds, or removes).
type Instance struct {
	ID      int    `json:"id"`
	Initial string `json:"initial,omitempty"`
	Desired string `json:"desired,omitempty"`
}

// Phase is where an instance is in the current direction.
type Phase int

// The phases.
const (
	Idle Phase = iota
	Working
	Succeeded
	InstanceFailed
)

var phaseNames = map[Phase]string{Idle: "IDLE", Working: "WORKING", Succeeded: "SUCCEEDED", InstanceFailed: "FAILED"}

func (p Phase) String() string {
	if n, ok := phaseNames[p]; ok {
		return n
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// MarshalText writes the phase's name.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a phase's name.
func (p *Phase) UnmarshalText(b []byte) error {
	for v, n := range phaseNames {
		if n == string(b) {
			*p = v
			return nil
		}
	}
	return fmt.Errorf("unknown instance phase %q", b)
}

// Progress is one instance's progress in the current direction.
type Progress struct {
	Phase Phase `json:"phase"`
	// Since is when the instance started (Working); its new tasks that
	// end after it count as failures.
	Since time.Time `json:"since,omitzero"`
	// SlaChecked is set once the instance's SLA check was recorded (an
	// SLA-aware kill).
	SlaChecked bool `json:"slaChecked,omitempty"`
}

// Update is one job update's state. It is plain data (JSON), so that the
// caller can store it and carry on with it after a restart.
type Update struct {
	Status   Status   `json:"status"`
	Settings Settings `json:"settings"`
	// Instances are the instances the update changes, by ascending id.
	Instances []Instance `json:"instances"`
	// Progress is each instance's progress (same order as Instances).
	Progress []Progress `json:"progress"`
	// Batches is how many batches the current direction has started.
	Batches int `json:"batches,omitempty"`
	// Autopaused is the batch after which the update last paused itself.
	Autopaused int `json:"autopaused,omitempty"`
	// LastPulse is the latest pulse of a coordinated update.
	LastPulse time.Time `json:"lastPulse,omitzero"`
	// slaPending are the current Evaluate's kills held for an SLA check.
	slaPending []slaKill
}

// slaKill is instance i's task t, to kill once the SLA allows.
type slaKill struct {
	i int
	t Task
}

// Task is the caller's view of one of an instance's tasks.
type Task struct {
	ID     string
	Config string // the configuration it runs, as in Instance
	Status state.Status
	// Since is when the task entered Status (its latest event).
	Since time.Time
	// EndRequested is set when the task's end was asked for (it has been
	// KILLING, RESTARTING, DRAINING or PREEMPTING): its end is no failure.
	EndRequested bool
}

// View is what Evaluate sees of the job.
type View struct {
	// Tasks are each instance's tasks, active and ended.
	Tasks map[int][]Task
	// Fits reports whether a task of configuration to fits where one of
	// from runs (its resources are no larger and its constraints the
	// same), which makes a kill reserve the agent. Nil: never.
	Fits func(from, to string) bool
	// MayKill, when set, makes the update SLA-aware (Aurora's slaAware
	// with SlaKillController): a task is killed only once MayKill allows
	// it; meanwhile its instance waits, and is looked at again at retry
	// (when not zero). MayKill is asked only by an Evaluate that makes no
	// other change, and at most one such kill is made per Evaluate, so
	// that each check sees a current view. Nil: kills go at once.
	MayKill func(instance int, t Task) (ok bool, retry time.Time)
}

// The messages of the instance events of SLA-aware kills.
const (
	SlaChecking = "Checking SLA before continuing."
	SlaPassed   = "SLA check passed, continuing."
)

// CommandKind is what the caller is asked to do.
type CommandKind int

// The commands.
const (
	// AddTask inserts a PENDING task of Config for Instance.
	AddTask CommandKind = iota
	// KillTask kills TaskID; with Reserve its agent is kept for the
	// instance's replacement (Aurora's KILL_TASK_AND_RESERVE).
	KillTask
)

// Command asks the caller to change the job's tasks.
type Command struct {
	Kind     CommandKind
	Instance int
	Config   string // AddTask
	TaskID   string // KillTask
	Reserve  bool   // KillTask
}

// Event is an update status change (Aurora's JobUpdateEvent).
type Event struct {
	Status  Status
	Time    time.Time
	User    string
	Message string
	// after is how many of the Result's InstanceEvents came before it.
	after int
}

// InstanceEvent is an instance's progress (Aurora's JobInstanceUpdateEvent).
type InstanceEvent struct {
	Instance int
	Time     time.Time
	Action   InstanceAction
	Message  string
}

// Result is what a call did: the events to record, the commands to carry
// out, and when to evaluate again.
type Result struct {
	Events         []Event
	InstanceEvents []InstanceEvent
	Commands       []Command
	// Wake, when not zero, is when Evaluate has something to check (a
	// task's watch ends, a pulse expires) even if nothing else happens.
	Wake time.Time
	// Again asks for another Evaluate at once, with a View that reflects
	// the Commands (or the new direction).
	Again bool
}

func (r *Result) wakeAt(t time.Time) {
	if r.Wake.IsZero() || t.Before(r.Wake) {
		r.Wake = t
	}
}

// New starts an update over instances: ROLLING_FORWARD, or
// ROLL_FORWARD_AWAITING_PULSE for a coordinated update, which waits for
// its first pulse.
func New(settings Settings, instances []Instance, now time.Time, user, message string) (*Update, Result) {
	u := &Update{Status: RollingForward, Settings: settings}
	u.Instances = append([]Instance(nil), instances...)
	sortInstances(u.Instances)
	u.Progress = make([]Progress, len(u.Instances))
	if u.coordinated() {
		u.Status = RollForwardAwaitingPulse
	}
	var r Result
	r.Events = append(r.Events, Event{Status: u.Status, Time: now, User: user, Message: message})
	r.Again = true
	return u, r
}

func sortInstances(in []Instance) {
	for i := 1; i < len(in); i++ {
		for j := i; j > 0 && in[j].ID < in[j-1].ID; j-- {
			in[j], in[j-1] = in[j-1], in[j]
		}
	}
}

func (u *Update) coordinated() bool { return u.Settings.BlockIfNoPulsesAfter > 0 }

// move changes the status, recording the event; a move the table does not
// allow is refused.
func (u *Update) move(r *Result, to Status, now time.Time, user, msg string) error {
	if !Allowed(u.Status, to) {
		return fmt.Errorf("a %s update cannot become %s", u.Status, to)
	}
	u.Status = to
	r.Events = append(r.Events, Event{Status: to, Time: now, User: user, Message: msg, after: len(r.InstanceEvents)})
	return nil
}

// restart begins the current direction anew: every instance idle.
func (u *Update) restart() {
	for i := range u.Progress {
		u.Progress[i] = Progress{}
	}
	u.Batches, u.Autopaused = 0, 0
}

// desired is what instance i should run in the current direction.
func (u *Update) desired(i int) string {
	if u.Status.Forward() {
		return u.Instances[i].Desired
	}
	return u.Instances[i].Initial
}

// order is the instances' indexes in the current direction's order:
// ascending ids forward, descending back.
func (u *Update) order() []int {
	n := len(u.Instances)
	out := make([]int, n)
	for i := range out {
		if u.Status.Forward() {
			out[i] = i
		} else {
			out[i] = n - 1 - i
		}
	}
	return out
}

// batches splits the instances into the strategy's batches. Rolling back
// undoes the forward batches, last first, each in reverse: (0,1,2)
// (3,4,5) (6,7,8) roll back as (8,7,6) (5,4,3) (2,1,0).
func (u *Update) batches() [][]int {
	sizes := u.Settings.Strategy.GroupSizes
	var parts [][]int
	for i, k := 0, 0; i < len(u.Instances); k++ {
		size := 1
		if len(sizes) > 0 {
			size = max(sizes[min(k, len(sizes)-1)], 1)
		}
		end := min(i+size, len(u.Instances))
		part := make([]int, 0, end-i)
		for j := i; j < end; j++ {
			part = append(part, j)
		}
		parts = append(parts, part)
		i = end
	}
	if u.Status.Forward() {
		return parts
	}
	back := make([][]int, 0, len(parts))
	for k := len(parts) - 1; k >= 0; k-- {
		p := parts[k]
		rev := make([]int, len(p))
		for j := range p {
			rev[j] = p[len(p)-1-j]
		}
		back = append(back, rev)
	}
	return back
}

func (u *Update) count(ph Phase) int {
	n := 0
	for _, p := range u.Progress {
		if p.Phase == ph {
			n++
		}
	}
	return n
}

// next picks the instances to start, or says that the update pauses
// itself after a batch.
func (u *Update) next() (group []int, pause bool) {
	st := u.Settings.Strategy
	working := u.count(Working)
	if st.Kind == Queue {
		room := 1
		if len(st.GroupSizes) > 0 {
			room = st.GroupSizes[0]
		}
		room -= working
		for _, i := range u.order() {
			if room <= 0 {
				break
			}
			if u.Progress[i].Phase == Idle {
				group = append(group, i)
				room--
			}
		}
		return group, false
	}
	if working > 0 {
		return nil, false
	}
	parts := u.batches()
	for u.Batches < len(parts) {
		if st.Autopause && u.Status.Forward() && u.Batches > 0 && u.Autopaused != u.Batches {
			u.Autopaused = u.Batches
			return nil, true
		}
		for _, i := range parts[u.Batches] {
			if u.Progress[i].Phase == Idle {
				group = append(group, i)
			}
		}
		u.Batches++
		if len(group) > 0 {
			return group, false
		}
	}
	return nil, false
}

// Evaluate moves a rolling update on: it looks at the instances in
// flight, finishes or fails them, decides the update's outcome or starts
// more instances, and asks for the task changes that takes. It does
// nothing to a paused, pulse-awaiting or ended update.
func (u *Update) Evaluate(now time.Time, v View) Result {
	var r Result
	if !u.Status.Rolling() {
		return r
	}
	if u.coordinated() {
		due := u.LastPulse.Add(u.Settings.BlockIfNoPulsesAfter)
		if !now.Before(due) {
			u.move(&r, awaitingOf(u.Status), now, "", "")
			return r
		}
		r.wakeAt(due)
	}
	seen := map[int]bool{}
	u.slaPending = nil
	for {
		for _, i := range u.order() {
			if u.Progress[i].Phase == Working && !seen[i] {
				seen[i] = true
				u.evaluate(&r, i, now, v)
			}
		}
		if u.count(InstanceFailed) > u.Settings.MaxFailedInstances {
			if u.Status == RollingForward && u.Settings.RollbackOnFailure {
				u.move(&r, RollingBack, now, "", "")
				u.restart()
				// The view predates this call's commands: look again.
				r.Again = true
				return r
			}
			u.move(&r, Failed, now, "", "")
			return r
		}
		if u.count(Working) == 0 && u.count(Idle) == 0 {
			done := RolledForward
			if !u.Status.Forward() {
				done = RolledBack
			}
			u.move(&r, done, now, "", "")
			return r
		}
		group, pause := u.next()
		if pause {
			u.move(&r, pausedOf(u.Status), now, "", "Paused after a batch.")
			return r
		}
		if len(group) == 0 {
			u.slaKills(&r, now, v)
			return r
		}
		action := InstanceUpdating
		if !u.Status.Forward() {
			action = InstanceRollingBack
		}
		for _, i := range group {
			u.Progress[i] = Progress{Phase: Working, Since: now}
			r.InstanceEvents = append(r.InstanceEvents, InstanceEvent{Instance: u.Instances[i].ID, Time: now, Action: action})
		}
	}
}

// killable reports whether the update may kill a task in st; a task on
// its way out (KILLING, RESTARTING, DRAINING, PREEMPTING) is awaited.
func killable(st state.Status) bool {
	switch st {
	case state.Pending, state.Throttled, state.Assigned, state.Starting, state.Running, state.Partitioned:
		return true
	}
	return false
}

// evaluate is the per-instance evaluator: instance i is Working; decide
// whether it is done, has failed, or what to do to its tasks next.
func (u *Update) evaluate(r *Result, i int, now time.Time, v View) {
	inst, p := u.Instances[i], &u.Progress[i]
	want := u.desired(i)
	var cur *Task
	var kills []Command
	failures, waiting := 0, false
	for _, t := range v.Tasks[inst.ID] {
		switch {
		case t.Status.Terminal():
			// A task of the wanted configuration that ended by itself
			// since the instance started is a failed attempt.
			if want != "" && t.Config == want && !t.EndRequested && !t.Since.Before(p.Since) {
				failures++
			}
		case !t.Status.Active():
		case want != "" && t.Config == want && cur == nil:
			cur = &t
		case killable(t.Status):
			if v.MayKill != nil {
				u.slaHold(r, i, t, now)
				waiting = true
				continue
			}
			reserve := want != "" && t.Status.SlaveAssigned() && v.Fits != nil && v.Fits(t.Config, want)
			kills = append(kills, Command{Kind: KillTask, Instance: inst.ID, TaskID: t.ID, Reserve: reserve})
		default:
			waiting = true
		}
	}
	forward := u.Status.Forward()
	switch {
	case want != "" && failures > u.Settings.MaxPerInstanceFailures:
		p.Phase = InstanceFailed
		a := InstanceUpdateFailed
		if !forward {
			a = InstanceRollbackFailed
		}
		r.InstanceEvents = append(r.InstanceEvents, InstanceEvent{Instance: inst.ID, Time: now, Action: a})
	case len(kills) > 0:
		r.Commands = append(r.Commands, kills...)
		r.Again = true
	case waiting:
	case want == "":
		u.succeed(r, i, now)
	case cur == nil:
		r.Commands = append(r.Commands, Command{Kind: AddTask, Instance: inst.ID, Config: want})
		r.Again = true
	case cur.Status == state.Running:
		due := cur.Since.Add(u.Settings.MinWaitInRunning)
		if now.Before(due) {
			r.wakeAt(due)
			return
		}
		u.succeed(r, i, now)
	}
}

// slaHold records that instance i's task t waits for an SLA-aware kill
// (the check is recorded once per instance, as Aurora's INSTANCE_UPDATING
// or INSTANCE_ROLLING_BACK event with the SlaChecking message).
func (u *Update) slaHold(r *Result, i int, t Task, now time.Time) {
	p := &u.Progress[i]
	if !p.SlaChecked {
		p.SlaChecked = true
		r.InstanceEvents = append(r.InstanceEvents, InstanceEvent{Instance: u.Instances[i].ID, Time: now, Action: u.updatingAction(), Message: SlaChecking})
	}
	u.slaPending = append(u.slaPending, slaKill{i, t})
}

func (u *Update) updatingAction() InstanceAction {
	if u.Status.Forward() {
		return InstanceUpdating
	}
	return InstanceRollingBack
}

// slaKills makes the first held kill MayKill allows, in evaluation order,
// when this Evaluate made no other change (so that the view the check
// sees is current); the others wait for the next look.
func (u *Update) slaKills(r *Result, now time.Time, v View) {
	pending := u.slaPending
	u.slaPending = nil
	if len(pending) == 0 || len(r.Commands) > 0 || v.MayKill == nil {
		return
	}
	for _, k := range pending {
		id := u.Instances[k.i].ID
		ok, retry := v.MayKill(id, k.t)
		if !ok {
			if !retry.IsZero() {
				r.wakeAt(retry)
			}
			continue
		}
		want := u.desired(k.i)
		reserve := want != "" && k.t.Status.SlaveAssigned() && v.Fits != nil && v.Fits(k.t.Config, want)
		r.InstanceEvents = append(r.InstanceEvents, InstanceEvent{Instance: id, Time: now, Action: u.updatingAction(), Message: SlaPassed})
		r.Commands = append(r.Commands, Command{Kind: KillTask, Instance: id, TaskID: k.t.ID, Reserve: reserve})
		r.Again = true
		return
	}
}

func (u *Update) succeed(r *Result, i int, now time.Time) {
	u.Progress[i].Phase = Succeeded
	a := InstanceUpdated
	if !u.Status.Forward() {
		a = InstanceRolledBack
	}
	r.InstanceEvents = append(r.InstanceEvents, InstanceEvent{Instance: u.Instances[i].ID, Time: now, Action: a})
}

// ErrState is returned by a request the update's status does not allow.
type ErrState struct {
	Status  Status
	Request string
}

func (e *ErrState) Error() string {
	return fmt.Sprintf("The update is %s; it cannot be %s.", e.Status, e.Request)
}

// Pause pauses a rolling or pulse-awaiting update, keeping its direction.
func (u *Update) Pause(now time.Time, user, msg string) (Result, error) {
	var r Result
	switch u.Status {
	case RollingForward, RollingBack, RollForwardAwaitingPulse, RollBackAwaitingPulse:
		return r, u.move(&r, pausedOf(u.Status), now, user, msg)
	}
	return r, &ErrState{u.Status, "paused"}
}

// Resume resumes a paused update: it rolls on, or awaits a pulse if it is
// coordinated and its latest pulse is too old.
func (u *Update) Resume(now time.Time, user, msg string) (Result, error) {
	var r Result
	if u.Status != RollForwardPaused && u.Status != RollBackPaused {
		return r, &ErrState{u.Status, "resumed"}
	}
	to := rollingOf(u.Status)
	if u.coordinated() && !now.Before(u.LastPulse.Add(u.Settings.BlockIfNoPulsesAfter)) {
		to = awaitingOf(u.Status)
	}
	err := u.move(&r, to, now, user, msg)
	r.Again = err == nil && to.Rolling()
	return r, err
}

// Abort ends an active update where it stands: ABORTED, tasks as they are.
func (u *Update) Abort(now time.Time, user, msg string) (Result, error) {
	var r Result
	if !u.Status.Active() {
		return r, &ErrState{u.Status, "aborted"}
	}
	return r, u.move(&r, Aborted, now, user, msg)
}

// Rollback turns an update that is rolling forward (or paused, or
// awaiting a pulse, on the way forward) back: ROLLING_BACK, from the last
// instance to the first.
func (u *Update) Rollback(now time.Time, user, msg string) (Result, error) {
	var r Result
	if !u.Status.Active() || !u.Status.Forward() {
		return r, &ErrState{u.Status, "rolled back"}
	}
	if err := u.move(&r, RollingBack, now, user, msg); err != nil {
		return r, err
	}
	u.restart()
	r.Again = true
	return r, nil
}

// Fail ends an active update in ERROR (an internal error: the caller
// cannot go on with it).
func (u *Update) Fail(now time.Time, msg string) (Result, error) {
	var r Result
	if !u.Status.Active() {
		return r, &ErrState{u.Status, "failed"}
	}
	return r, u.move(&r, Error, now, "", msg)
}

// PulseStatus is pulseJobUpdate's answer (Aurora's JobUpdatePulseStatus).
type PulseStatus string

// The pulse answers.
const (
	PulseOK       PulseStatus = "OK"
	PulseFinished PulseStatus = "FINISHED"
)

// Pulse records a pulse of a coordinated update: one awaiting a pulse
// rolls on. A pulse to an ended update answers FINISHED.
func (u *Update) Pulse(now time.Time) (PulseStatus, Result) {
	var r Result
	if !u.Status.Active() {
		return PulseFinished, r
	}
	u.LastPulse = now
	if u.Status == RollForwardAwaitingPulse || u.Status == RollBackAwaitingPulse {
		u.move(&r, rollingOf(u.Status), now, "", "")
		r.Again = true
	}
	return PulseOK, r
}

// Counts are how many instances are in each phase.
func (u *Update) Counts() map[Phase]int {
	out := map[Phase]int{}
	for _, p := range u.Progress {
		out[p.Phase]++
	}
	return out
}
