package planner

import (
	"fmt"
	"time"
)

// proc is the planner's view of one process.
type proc struct {
	cfg  Process
	deps []int // processes that must finish first

	state                       ProcessState
	runs                        []RunStatus
	failures, successes, losses int
	lastExit                    time.Time // end of the last exited run; gates the next one
	exitedOnce                  bool
	finished                    bool // satisfies dependants and completion (SUCCESS, or ephemeral out of retries)
	failed                      bool // counts against the task's max_failures

	// About the latest run.
	term   bool // asked to terminate: its exit is KILLED, not a success or failure
	kill   bool // SIGKILLed at the end of the task
	exited bool // its end was reported (force-killed runs stay unreported until then)
	// One-shot bookkeeping for Next; deliberately not replayed (see the
	// package doc).
	termSent, killSent bool
}

func (p *proc) cur() *RunStatus {
	if len(p.runs) == 0 {
		return nil
	}
	return &p.runs[len(p.runs)-1]
}

// alive reports whether the latest run is forked or running as far as the
// plan is concerned.
func (p *proc) alive() bool {
	r := p.cur()
	return r != nil && (r.State == Forked || r.State == Running)
}

// Planner decides what to run. Create it with New or Replay.
type Planner struct {
	task  Task
	procs []*proc
	index map[string]int

	state       TaskState
	history     []TaskStatus
	eventual    TaskState // outcome decided when ACTIVE ends (SUCCESS or FAILED); Active until then
	forced      TaskState // KILLED or LOST after Kill or Lose; Active otherwise
	deadline    time.Time // valid if hasDeadline: set when ACTIVE ends or by Kill/Lose
	hasDeadline bool
	clock       time.Time // time of the latest applied input

	termOrphans, killOrphans         bool
	termOrphansSent, killOrphansSent bool
}

// New validates t and returns a planner for a task created at created. The
// task starts ACTIVE.
func New(t Task, created time.Time) (*Planner, error) {
	deps, err := compile(t)
	if err != nil {
		return nil, err
	}
	created = created.UTC()
	p := &Planner{
		task:    t,
		index:   make(map[string]int, len(t.Processes)),
		state:   Active,
		history: []TaskStatus{{Active, created}},
		clock:   created,
	}
	// Keep our own copy, the caller may reuse its slice. Order lives on as
	// the compiled deps.
	p.task.Processes = append([]Process(nil), t.Processes...)
	p.task.Order = nil
	for i, c := range p.task.Processes {
		p.procs = append(p.procs, &proc{cfg: c, deps: deps[i], state: Waiting})
		p.index[c.Name] = i
	}
	// A regular plan of only ephemeral processes is complete at once.
	p.evaluate(created)
	return p, nil
}

// TaskState returns the task's current state.
func (p *Planner) TaskState() TaskState { return p.state }

// Process returns the status of the named process.
func (p *Planner) Process(name string) (ProcessStatus, bool) {
	i, ok := p.index[name]
	if !ok {
		return ProcessStatus{}, false
	}
	return p.procs[i].status(), true
}

func (p *proc) status() ProcessStatus {
	s := ProcessStatus{
		Name:      p.cfg.Name,
		State:     p.state,
		Run:       len(p.runs) - 1,
		Failures:  p.failures,
		Successes: p.successes,
		Losses:    p.losses,
		Runs:      make([]RunStatus, len(p.runs)),
	}
	for i, r := range p.runs {
		s.Runs[i] = r
		s.Runs[i].ExitCode = copyInt(r.ExitCode)
	}
	if r := p.cur(); r != nil {
		s.StartTime, s.StopTime, s.ExitCode = r.StartTime, r.StopTime, copyInt(r.ExitCode)
	}
	return s
}

func copyInt(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Snapshot returns a deep copy of the whole state.
func (p *Planner) Snapshot() TaskSnapshot {
	s := TaskSnapshot{
		Name:     p.task.Name,
		State:    p.state,
		Statuses: append([]TaskStatus(nil), p.history...),
		Deadline: p.deadline,
	}
	for _, pr := range p.procs {
		s.Processes = append(s.Processes, pr.status())
	}
	return s
}

// at returns the effective time of an input: UTC without a monotonic
// reading, so that replayed times compare like live ones, and never before an
// input already applied.
func (p *Planner) at(now time.Time) time.Time {
	now = now.UTC()
	if now.Before(p.clock) {
		return p.clock
	}
	return now
}

// inPlan reports whether pr belongs to the plan that is running now.
func (p *Planner) inPlan(pr *proc) bool {
	return (p.state == Active && !pr.cfg.Final) || (p.state == Finalizing && pr.cfg.Final)
}

func (p *Planner) depsDone(pr *proc) bool {
	for _, d := range pr.deps {
		if !p.procs[d].finished {
			return false
		}
	}
	return true
}

// gate is the earliest time pr may be forked again.
func (pr *proc) gate() time.Time {
	if !pr.exitedOnce {
		return time.Time{}
	}
	return pr.lastExit.Add(pr.cfg.MinDuration)
}

func (p *Planner) aliveCount() int {
	n := 0
	for _, pr := range p.procs {
		if pr.alive() {
			n++
		}
	}
	return n
}

// ready reports whether pr is waiting with its dependencies finished, i.e.
// runnable now or once min_duration has passed.
func (p *Planner) ready(pr *proc) bool {
	return pr.state == Waiting && p.depsDone(pr)
}

// forkable returns the forks allowed at now, in the task's order.
func (p *Planner) forkable(now time.Time) []Action {
	if p.state != Active && p.state != Finalizing {
		return nil
	}
	room := -1
	if p.task.MaxConcurrency > 0 {
		room = max(p.task.MaxConcurrency-p.aliveCount(), 0)
	}
	var out []Action
	for _, pr := range p.procs {
		if room == 0 {
			break
		}
		if p.inPlan(pr) && p.ready(pr) && !now.Before(pr.gate()) {
			out = append(out, Action{Kind: Fork, Process: pr.cfg.Name, Run: len(pr.runs)})
			room--
		}
	}
	return out
}

// complete reports whether every non-ephemeral process of the plan has
// finished or failed.
func (p *Planner) complete(final bool) bool {
	for _, pr := range p.procs {
		if pr.cfg.Final == final && !pr.cfg.Ephemeral && !pr.finished && !pr.failed {
			return false
		}
	}
	return true
}

// deadlocked reports whether the plan can make no progress: none of its
// non-ephemeral processes is alive or will ever be runnable, yet it is not
// complete. Ephemeral processes are left out because nothing that completion
// waits for can depend on them; Thermos counts them, so that a running
// ephemeral daemon hides a deadlock forever.
func (p *Planner) deadlocked(final bool) bool {
	for _, pr := range p.procs {
		if pr.cfg.Final == final && !pr.cfg.Ephemeral && (pr.alive() || p.ready(pr)) {
			return false
		}
	}
	return !p.complete(final)
}

func (p *Planner) failedCount() int {
	n := 0
	for _, pr := range p.procs {
		if !pr.cfg.Final && pr.failed {
			n++
		}
	}
	return n
}

func (p *Planner) underFailureLimit() bool {
	return p.task.MaxFailures == 0 || p.failedCount() < p.task.MaxFailures
}

func (p *Planner) setState(s TaskState, at time.Time) {
	p.state = s
	p.history = append(p.history, TaskStatus{s, at})
}

// evaluate makes every transition that the state calls for at now. Apart from
// the deadline it depends only on applied events, so calling it again at a
// later time changes nothing unless the deadline has passed.
func (p *Planner) evaluate(now time.Time) {
	for {
		switch p.state {
		case Active:
			switch {
			case p.forced != Active:
				// Kill or Lose: the outcome is already decided.
			case p.complete(false):
				p.eventual = TaskFailed
				if p.underFailureLimit() { // a complete plan is never deadlocked
					p.eventual = TaskSuccess
				}
			case !p.underFailureLimit() || p.deadlocked(false):
				p.eventual = TaskFailed
			default:
				return
			}
			if !p.hasDeadline {
				p.deadline, p.hasDeadline = now.Add(p.task.FinalizationWait), true
			}
			p.setState(Cleaning, now)
			for _, pr := range p.procs {
				if pr.alive() {
					pr.term = true
				}
			}
			p.termOrphans = true
		case Cleaning:
			if !now.Before(p.deadline) {
				p.terminate(p.deadline, true)
				return
			}
			if p.aliveCount() > 0 {
				return
			}
			p.setState(Finalizing, now)
		case Finalizing:
			if p.complete(true) || p.deadlocked(true) {
				p.terminate(now, false)
				return
			}
			if !now.Before(p.deadline) {
				p.terminate(p.deadline, true)
			}
			return
		default:
			return
		}
	}
}

// terminate ends the task. Runs still alive are killed and count as KILLED
// from now on, as Thermos records them.
func (p *Planner) terminate(at time.Time, overdue bool) {
	s := p.forced
	if s == Active {
		s = p.eventual
	}
	p.setState(s, at)
	for _, pr := range p.procs {
		if r := pr.cur(); pr.alive() {
			r.State, r.StopTime = Killed, at
			pr.state = Killed
			pr.term, pr.kill = true, true
		}
	}
	if overdue {
		p.killOrphans = true
	}
}

// Next returns what to do at now: signals owed and the forks allowed, and when
// to call it again. See the package doc for the protocol.
func (p *Planner) Next(now time.Time) Decision {
	var d Decision
	now = p.at(now)
	if (p.state == Cleaning || p.state == Finalizing) && !now.Before(p.deadline) {
		t := Record{Time: now, Kind: KindTick}
		p.Tick(now)
		d.Tick = &t
	}
	for _, pr := range p.procs {
		switch {
		case pr.kill && !pr.exited && !pr.killSent:
			pr.killSent = true
			d.Actions = append(d.Actions, Action{Kind: KillTree, Process: pr.cfg.Name, Run: len(pr.runs) - 1})
		case pr.term && pr.alive() && !pr.termSent:
			pr.termSent = true
			d.Actions = append(d.Actions, Action{Kind: Term, Process: pr.cfg.Name, Run: len(pr.runs) - 1})
		}
	}
	if p.termOrphans && !p.termOrphansSent {
		p.termOrphansSent = true
		if !p.killOrphans { // about to be SIGKILLed anyway
			d.Actions = append(d.Actions, Action{Kind: TermOrphans})
		}
	}
	if p.killOrphans && !p.killOrphansSent {
		p.killOrphansSent = true
		d.Actions = append(d.Actions, Action{Kind: KillOrphans})
	}
	d.Actions = append(d.Actions, p.forkable(now)...)

	if p.state == Active || p.state == Finalizing {
		for _, pr := range p.procs {
			if g := pr.gate(); p.inPlan(pr) && p.ready(pr) && g.After(now) && (d.Wake.IsZero() || g.Before(d.Wake)) {
				d.Wake = g
			}
		}
	}
	if (p.state == Cleaning || p.state == Finalizing) && (d.Wake.IsZero() || p.deadline.Before(d.Wake)) {
		d.Wake = p.deadline
	}
	return d
}

// Tick applies the passage of time: it ends the task if the deadline has
// passed.
func (p *Planner) Tick(now time.Time) {
	p.clock = p.at(now)
	p.evaluate(p.clock)
}

// lookup finds the latest run of a process, checking the run number.
func (p *Planner) lookup(name string, run int) (*proc, error) {
	i, ok := p.index[name]
	if !ok {
		return nil, fmt.Errorf("unknown process %q", name)
	}
	pr := p.procs[i]
	if len(pr.runs) == 0 {
		return nil, fmt.Errorf("process %q has not been forked", name)
	}
	if run != len(pr.runs)-1 {
		return nil, fmt.Errorf("process %q: run %d is not the current run %d", name, run, len(pr.runs)-1)
	}
	return pr, nil
}

// Forked reports that run of the named process was forked at now. It is
// refused unless the fork is allowed at now, as Next decides: the process's
// plan is running, run is its next run number, the processes ordered before it
// finished, min_duration has passed and max_concurrency allows.
func (p *Planner) Forked(name string, run int, now time.Time) error {
	i, ok := p.index[name]
	if !ok {
		return fmt.Errorf("unknown process %q", name)
	}
	pr := p.procs[i]
	now = p.at(now)
	if p.state.Terminal() || ((p.state == Cleaning || p.state == Finalizing) && !now.Before(p.deadline)) {
		return fmt.Errorf("process %q forked after the task ended", name)
	}
	if !p.inPlan(pr) {
		return fmt.Errorf("process %q forked while its plan is not running (task %s)", name, p.state)
	}
	if pr.state != Waiting {
		return fmt.Errorf("process %q forked while %s", name, pr.state)
	}
	if run != len(pr.runs) {
		return fmt.Errorf("process %q forked as run %d, expected run %d", name, run, len(pr.runs))
	}
	if !p.depsDone(pr) {
		return fmt.Errorf("process %q forked before its dependencies finished", name)
	}
	if now.Before(pr.gate()) {
		return fmt.Errorf("process %q forked before min_duration passed (at %s)", name, pr.gate().Format(time.RFC3339Nano))
	}
	if p.task.MaxConcurrency > 0 && p.aliveCount() >= p.task.MaxConcurrency {
		return fmt.Errorf("process %q forked beyond max_concurrency %d", name, p.task.MaxConcurrency)
	}
	p.clock = now
	pr.runs = append(pr.runs, RunStatus{Run: run, State: Forked, ForkTime: now})
	pr.state = Forked
	pr.term, pr.kill, pr.exited, pr.termSent, pr.killSent = false, false, false, false, false
	return nil
}

// Started reports that the run is running (it has exec'ed).
func (p *Planner) Started(name string, run int, now time.Time) error {
	pr, err := p.lookup(name, run)
	if err != nil {
		return err
	}
	now = p.at(now)
	r := pr.cur()
	if r.State != Forked && !(pr.kill && !pr.exited) {
		return fmt.Errorf("process %q run %d started while %s", name, run, r.State)
	}
	p.Tick(now) // a passed deadline comes first
	if r.State == Forked {
		r.State, r.StartTime = Running, now
		pr.state = Running
	}
	// Otherwise it was killed at the end of the task while starting.
	return nil
}

// Exited reports that the run ended with exitCode (the executor decides how a
// death by signal is encoded; any non-zero code is a failure).
func (p *Planner) Exited(name string, run, exitCode int, now time.Time) error {
	return p.end(name, run, &exitCode, now)
}

// Lost reports that the run vanished without a known exit status. It is
// retried at once and does not count as a failure.
func (p *Planner) Lost(name string, run int, now time.Time) error {
	return p.end(name, run, nil, now)
}

func (p *Planner) end(name string, run int, code *int, now time.Time) error {
	pr, err := p.lookup(name, run)
	if err != nil {
		return err
	}
	r := pr.cur()
	if !pr.alive() && !(pr.kill && !pr.exited) {
		return fmt.Errorf("process %q run %d ended while %s", name, run, r.State)
	}
	now = p.at(now)
	p.Tick(now)
	pr.exited = true
	if r.State == Killed {
		// Killed at the end of the task; keep what the exit says, nothing else.
		r.ExitCode = copyInt(code)
		return nil
	}
	r.StopTime, r.ExitCode = now, copyInt(code)
	switch {
	case pr.term:
		// Asked to terminate: not the process's own outcome.
		r.State = Killed
		if code == nil {
			r.State = Lost
		}
		pr.state = r.State
	case code == nil:
		r.State = Lost
		pr.losses++
		pr.state = Waiting // retried without waiting for min_duration, as in Thermos
		p.runLimit(pr)
	case *code == 0:
		r.State = Success
		pr.successes++
		pr.lastExit, pr.exitedOnce = now, true
		if !p.runLimit(pr) {
			if pr.cfg.Daemon {
				pr.state = Waiting
			} else {
				pr.state, pr.finished = Success, true
			}
		}
	default:
		r.State = Failed
		pr.failures++
		pr.lastExit, pr.exitedOnce = now, true
		switch {
		case p.runLimit(pr):
		case pr.cfg.MaxFailures == 0 || pr.failures < pr.cfg.MaxFailures:
			pr.state = Waiting
		case pr.cfg.Ephemeral:
			pr.state, pr.finished = Failed, true
		default:
			pr.state, pr.failed = Failed, true
		}
	}
	p.evaluate(now)
	return nil
}

// runLimit marks pr FAILED if it has used up its runs.
func (p *Planner) runLimit(pr *proc) bool {
	if pr.successes+pr.failures+pr.losses < RunLimit {
		return false
	}
	pr.state, pr.failed = Failed, true
	return true
}

// Kill is a user kill: the outcome becomes KILLED, an ACTIVE task goes to
// CLEANING, and the deadline becomes now+grace unless it is already earlier.
// Final processes still run before the deadline. Ignored once terminal.
func (p *Planner) Kill(now time.Time, grace time.Duration) {
	p.stop(now, grace, TaskKilled)
}

// Lose ends the task as LOST at once: everything is killed and no final
// process runs. Ignored once terminal.
func (p *Planner) Lose(now time.Time) {
	p.stop(now, 0, TaskLost)
}

func (p *Planner) stop(now time.Time, grace time.Duration, outcome TaskState) {
	now = p.at(now)
	p.Tick(now)
	if p.state.Terminal() {
		return
	}
	p.forced = outcome
	d := now.Add(max(grace, 0))
	if !p.hasDeadline || d.Before(p.deadline) {
		p.deadline, p.hasDeadline = d, true
	}
	p.evaluate(now)
}
