package observer

import (
	"encoding/json"
	"math"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// The JSON API's types are package observerapi's.

func secs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

// fromSecs is the time secs gave (to the millisecond).
func fromSecs(s float64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(math.Round(s * 1000)))
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

func (o *Observer) taskRow(t *task) observerapi.TaskRow {
	state, since, launched := t.stateTimes()
	return observerapi.TaskRow{
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

func (o *Observer) taskJSON(t *task) observerapi.Task {
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
	var statuses []observerapi.Status
	for _, s := range t.Snapshot.Statuses {
		statuses = append(statuses, observerapi.Status{State: s.State.String(), Timestamp: secs(s.Time)})
	}
	return observerapi.Task{
		TaskID: t.ID, Name: t.Header.Task.Name, LaunchTimestamp: secs(launched), State: state.String(),
		StateTimestamp: secs(since), User: t.Header.User, ResourceConsumption: o.usage.taskUsage(t, o.cfg.DiskInterval),
		Ports: ports(t), Processes: procs, Task: cfg,
		Active: t.Active, Statuses: statuses, Hostname: t.Header.Hostname, Sandbox: t.sandboxPath(),
		AgentID: t.AgentID, FrameworkID: t.FrameworkID, ExecutorID: t.ExecutorID, ContainerID: t.ContainerID,
		ReplayError: t.ReplayError,
	}
}

func (o *Observer) runJSON(t *task, process string, r planner.RunStatus) observerapi.Run {
	j := observerapi.Run{ProcessName: process, ProcessRun: r.Run, State: r.State.String(),
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
func (o *Observer) processesJSON(t *task) map[string]observerapi.Run {
	out := map[string]observerapi.Run{}
	for _, p := range t.Snapshot.Processes {
		if r, ok := t.run(p.Name, -1); ok {
			out[p.Name] = o.runJSON(t, p.Name, r)
		}
	}
	return out
}
