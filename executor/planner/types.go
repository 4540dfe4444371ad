package planner

import (
	"fmt"
	"time"
)

// Aurora's defaults (reference sections 4.2 and 4.3). The zero values of
// Process and Task fields are taken literally, not as these defaults, because
// 0 is meaningful for max_failures; DefaultProcess and DefaultTask apply them.
const (
	DefaultMaxFailures      = 1
	DefaultMinDuration      = 5 * time.Second
	DefaultFinalizationWait = 30 * time.Second
	// RunLimit is the number of runs after which a process is marked FAILED
	// (Thermos's CappedTaskPlanner.TOTAL_RUN_LIMIT).
	RunLimit = 100
)

// Process is one process of a task, as in Thermos's schema.
type Process struct {
	Name    string `json:"name"`
	Cmdline string `json:"cmdline"` // not interpreted by the planner; carried for the executor
	// MaxFailures is the number of failed runs after which the process is
	// permanently FAILED; 0 retries forever.
	MaxFailures int  `json:"max_failures"`
	Daemon      bool `json:"daemon"`    // re-run after a successful exit too
	Ephemeral   bool `json:"ephemeral"` // ignored for the task's completion
	Final       bool `json:"final"`     // runs in the finalizing plan
	// MinDuration is the minimum time between the end of a run and the start
	// of the next one.
	MinDuration time.Duration `json:"min_duration"` // JSON: nanoseconds
}

// Task is the part of a Thermos task that the planner needs.
type Task struct {
	Name      string    `json:"name"`
	Processes []Process `json:"processes"`
	// Order holds the order constraints: each inner list runs in sequence
	// (Constraint(order=[...]) in the config).
	Order [][]string `json:"order"`
	// MaxFailures is the number of failed processes that fails the task;
	// 0 is unlimited.
	MaxFailures int `json:"max_failures"`
	// MaxConcurrency limits the number of processes forked or running at
	// once; 0 is unlimited.
	MaxConcurrency int `json:"max_concurrency"`
	// FinalizationWait is the time budget from the end of ACTIVE to the end of
	// FINALIZING.
	FinalizationWait time.Duration `json:"finalization_wait"` // JSON: nanoseconds
}

// DefaultProcess returns a process with Aurora's defaults.
func DefaultProcess(name, cmdline string) Process {
	return Process{Name: name, Cmdline: cmdline, MaxFailures: DefaultMaxFailures, MinDuration: DefaultMinDuration}
}

// DefaultTask returns a task with Aurora's defaults.
func DefaultTask(name string, processes ...Process) Task {
	return Task{Name: name, Processes: processes, MaxFailures: DefaultMaxFailures, FinalizationWait: DefaultFinalizationWait}
}

// ProcessState is Thermos's ProcessState, with the same values.
type ProcessState int

// Process states.
const (
	Waiting         ProcessState = 0 // blocked on dependencies, concurrency or min_duration
	Forked          ProcessState = 1 // forked, not yet reported running
	Running         ProcessState = 2
	Success         ProcessState = 3 // exit 0
	Killed          ProcessState = 4 // ended by task teardown
	Failed          ProcessState = 5 // exit != 0 (a run) or failed for good (a process)
	Lost            ProcessState = 6 // vanished; not a failure
	maxProcessState              = Lost
)

var processStateNames = [...]string{"WAITING", "FORKED", "RUNNING", "SUCCESS", "KILLED", "FAILED", "LOST"}

func (s ProcessState) String() string {
	if s >= 0 && s <= maxProcessState {
		return processStateNames[s]
	}
	return fmt.Sprintf("ProcessState(%d)", int(s))
}

// MarshalText makes JSON carry the state's name.
func (s ProcessState) MarshalText() ([]byte, error) {
	if s < 0 || s > maxProcessState {
		return nil, fmt.Errorf("invalid process state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a state name.
func (s *ProcessState) UnmarshalText(b []byte) error {
	for i, n := range processStateNames {
		if n == string(b) {
			*s = ProcessState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown process state %q", b)
}

// TaskState is Thermos's TaskState, with the same values.
type TaskState int

// Task states.
const (
	Active       TaskState = 0 // regular plan running
	TaskSuccess  TaskState = 1
	TaskFailed   TaskState = 2
	TaskKilled   TaskState = 3
	TaskLost     TaskState = 4
	Cleaning     TaskState = 5 // regular plan over; terminating what is left
	Finalizing   TaskState = 6 // final plan running
	maxTaskState           = Finalizing
)

var taskStateNames = [...]string{"ACTIVE", "SUCCESS", "FAILED", "KILLED", "LOST", "CLEANING", "FINALIZING"}

func (s TaskState) String() string {
	if s >= 0 && s <= maxTaskState {
		return taskStateNames[s]
	}
	return fmt.Sprintf("TaskState(%d)", int(s))
}

// Terminal reports whether s is SUCCESS, FAILED, KILLED or LOST.
func (s TaskState) Terminal() bool {
	return s >= TaskSuccess && s <= TaskLost
}

// MarshalText makes JSON carry the state's name.
func (s TaskState) MarshalText() ([]byte, error) {
	if s < 0 || s > maxTaskState {
		return nil, fmt.Errorf("invalid task state %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a state name.
func (s *TaskState) UnmarshalText(b []byte) error {
	for i, n := range taskStateNames {
		if n == string(b) {
			*s = TaskState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown task state %q", b)
}

// ActionKind says what the executor must do.
type ActionKind int

// Action kinds.
const (
	// Fork starts run Action.Run of Action.Process (/bin/bash -c cmdline,
	// logs in .logs/<process>/<run>/). Report it with Forked.
	Fork ActionKind = iota + 1
	// Term sends SIGTERM to the process tree of the run.
	Term
	// KillTree sends SIGKILL to the process tree of the run.
	KillTree
	// TermOrphans sends SIGTERM to every process of the task that is no
	// longer in a run's tree (reparented to the executor, a child subreaper).
	TermOrphans
	// KillOrphans sends SIGKILL to those orphans.
	KillOrphans
)

var actionNames = [...]string{"", "fork", "term", "kill_tree", "term_orphans", "kill_orphans"}

func (k ActionKind) String() string {
	if k >= Fork && k <= KillOrphans {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one thing for the executor to do. Process and Run are empty for
// the orphan actions.
type Action struct {
	Kind    ActionKind
	Process string
	Run     int
}

func (a Action) String() string {
	if a.Kind == TermOrphans || a.Kind == KillOrphans {
		return a.Kind.String()
	}
	return fmt.Sprintf("%s %s/%d", a.Kind, a.Process, a.Run)
}

// Decision is the result of Next.
type Decision struct {
	// Actions to perform now, in order: signals first, then forks.
	Actions []Action
	// Wake is the latest time at which to call Next again if no event
	// arrives first; zero means only after the next event.
	Wake time.Time
	// Tick, when not nil, is a record the executor must append to its
	// checkpoint: time alone changed the state (the finalization deadline
	// passed) and Next has already applied it.
	Tick *Record
}

// RunStatus is the state of one run of a process.
type RunStatus struct {
	Run       int          `json:"run"`
	State     ProcessState `json:"state"`
	ForkTime  time.Time    `json:"fork_time,omitzero"`
	StartTime time.Time    `json:"start_time,omitzero"`
	StopTime  time.Time    `json:"stop_time,omitzero"`
	ExitCode  *int         `json:"exit_code,omitempty"` // nil until it exits
}

// ProcessStatus is the state of a process and its runs.
type ProcessStatus struct {
	Name      string       `json:"name"`
	State     ProcessState `json:"state"`
	Run       int          `json:"run"` // latest run; -1 before the first fork
	Failures  int          `json:"failures"`
	Successes int          `json:"successes"`
	Losses    int          `json:"losses"`
	// Of the latest run:
	StartTime time.Time   `json:"start_time,omitzero"`
	StopTime  time.Time   `json:"stop_time,omitzero"`
	ExitCode  *int        `json:"exit_code,omitempty"`
	Runs      []RunStatus `json:"runs"`
}

// TaskStatus is one entry of the task's state history.
type TaskStatus struct {
	State TaskState `json:"state"`
	Time  time.Time `json:"time"`
}

// TaskSnapshot is the whole state of a planner, for UIs and the observer.
type TaskSnapshot struct {
	Name     string       `json:"name"`
	State    TaskState    `json:"state"`
	Statuses []TaskStatus `json:"statuses"`
	// Deadline for reaching a terminal state, set when ACTIVE ends.
	Deadline  time.Time       `json:"deadline,omitzero"`
	Processes []ProcessStatus `json:"processes"` // in the task's order
}
