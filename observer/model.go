package observer

import (
	"encoding/json"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
)

// The JSON API's shapes follow the Thermos observer's (task_observer.py):
// same keys, times in seconds since the epoch. Fields Thermos does not have
// are additions, never renames.

// taskRowJSON is one row of /j/task_ids.
type taskRowJSON struct {
	TaskID          string         `json:"task_id"`
	Name            string         `json:"name"`
	Role            string         `json:"role"`
	LaunchTimestamp float64        `json:"launch_timestamp"`
	State           string         `json:"state"`
	StateTimestamp  float64        `json:"state_timestamp"`
	Ports           map[string]int `json:"ports"`
	TaskUsage
}

// taskIDsJSON is /j/task_ids.
type taskIDsJSON struct {
	Tasks     []taskRowJSON `json:"tasks"`
	Type      string        `json:"type"`
	Offset    int           `json:"offset"`
	Num       int           `json:"num"`
	TaskCount int           `json:"task_count"`
}

type statusJSON struct {
	State     string  `json:"state"`
	Timestamp float64 `json:"timestamp"`
}

// taskJSON is one task of /j/task.
type taskJSON struct {
	TaskID              string              `json:"task_id"`
	Name                string              `json:"name"`
	LaunchTimestamp     float64             `json:"launch_timestamp"`
	State               string              `json:"state"`
	StateTimestamp      float64             `json:"state_timestamp"`
	User                string              `json:"user"`
	ResourceConsumption TaskUsage           `json:"resource_consumption"`
	Ports               map[string]int      `json:"ports"`
	Processes           map[string][]string `json:"processes"` // waiting, running, success, failed, killed
	Task                json.RawMessage     `json:"task"`
	// Additions.
	Active      bool         `json:"active"`
	Statuses    []statusJSON `json:"statuses"`
	Hostname    string       `json:"hostname"`
	Sandbox     string       `json:"sandbox"`
	AgentID     string       `json:"agent_id"`
	FrameworkID string       `json:"framework_id"`
	ExecutorID  string       `json:"executor_id"`
	ContainerID string       `json:"container_id"`
	ReplayError string       `json:"replay_error,omitempty"`
}

// runJSON is a process run, /j/process/<id>/<process>[/<run>].
type runJSON struct {
	ProcessName string   `json:"process_name"`
	ProcessRun  int      `json:"process_run"`
	State       string   `json:"state"`
	StartTime   *float64 `json:"start_time,omitempty"`
	StopTime    *float64 `json:"stop_time,omitempty"`
	ReturnCode  *int     `json:"return_code,omitempty"`
	Used        *Usage   `json:"used,omitempty"` // while it runs
	// Additions.
	ForkTime *float64 `json:"fork_time,omitempty"`
}

func secs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

func optSecs(t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	s := secs(t)
	return &s
}

// stateTimes returns the task's current state and when it began, and the
// launch time.
func (t *task) stateTimes() (state planner.TaskState, since, launched time.Time) {
	st := t.Snapshot.Statuses
	launched = t.Header.LaunchTime
	if len(st) == 0 {
		return t.Snapshot.State, launched, launched
	}
	launched = st[0].Time
	since = st[len(st)-1].Time
	for i := len(st) - 1; i > 0 && st[i-1].State == st[i].State; i-- {
		since = st[i-1].Time
	}
	return t.Snapshot.State, since, launched
}

// category is Thermos's grouping of a process by its latest run.
func category(p planner.ProcessStatus) string {
	if len(p.Runs) == 0 {
		return "waiting"
	}
	switch p.Runs[len(p.Runs)-1].State {
	case planner.Forked, planner.Running:
		return "running"
	case planner.Success:
		return "success"
	case planner.Failed:
		return "failed"
	case planner.Killed:
		return "killed"
	}
	return "waiting" // WAITING, LOST
}

func (o *Observer) taskRow(t *task) taskRowJSON {
	state, since, launched := t.stateTimes()
	return taskRowJSON{
		TaskID: t.ID, Name: t.Header.Task.Name, Role: t.Header.User,
		LaunchTimestamp: secs(launched), State: state.String(), StateTimestamp: secs(since),
		Ports: ports(t), TaskUsage: o.usage.taskUsage(t, o.cfg.DiskInterval),
	}
}

func ports(t *task) map[string]int {
	if t.Header.Ports == nil {
		return map[string]int{}
	}
	return t.Header.Ports
}

func (o *Observer) taskJSON(t *task) taskJSON {
	state, since, launched := t.stateTimes()
	procs := map[string][]string{"waiting": {}, "running": {}, "success": {}, "failed": {}, "killed": {}}
	for _, p := range t.Snapshot.Processes {
		c := category(p)
		procs[c] = append(procs[c], p.Name)
	}
	cfg := t.Config
	if cfg == nil {
		cfg, _ = json.Marshal(t.Header.Task)
	}
	var statuses []statusJSON
	for _, s := range t.Snapshot.Statuses {
		statuses = append(statuses, statusJSON{s.State.String(), secs(s.Time)})
	}
	return taskJSON{
		TaskID: t.ID, Name: t.Header.Task.Name, LaunchTimestamp: secs(launched), State: state.String(),
		StateTimestamp: secs(since), User: t.Header.User, ResourceConsumption: o.usage.taskUsage(t, o.cfg.DiskInterval),
		Ports: ports(t), Processes: procs, Task: cfg,
		Active: t.Active, Statuses: statuses, Hostname: t.Header.Hostname, Sandbox: t.sandboxPath(),
		AgentID: t.AgentID, FrameworkID: t.FrameworkID, ExecutorID: t.ExecutorID, ContainerID: t.ContainerID,
		ReplayError: t.ReplayError,
	}
}

func (o *Observer) runJSON(t *task, process string, r planner.RunStatus) runJSON {
	j := runJSON{ProcessName: process, ProcessRun: r.Run, State: r.State.String(),
		StartTime: optSecs(r.StartTime), StopTime: optSecs(r.StopTime), ReturnCode: r.ExitCode, ForkTime: optSecs(r.ForkTime)}
	if t.Active {
		if u, ok := o.usage.runUsage(t, process, r); ok {
			j.Used = &u
		}
	}
	return j
}

// processesJSON is every process's latest run (Thermos's _processes);
// processes that never ran are left out, as there.
func (o *Observer) processesJSON(t *task) map[string]runJSON {
	out := map[string]runJSON{}
	for _, p := range t.Snapshot.Processes {
		if r, ok := t.run(p.Name, -1); ok {
			out[p.Name] = o.runJSON(t, p.Name, r)
		}
	}
	return out
}
