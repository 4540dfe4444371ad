package agent

import (
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Mesos gives the built-in command executor this much on top of its task,
// outside the allocation, so that the executor itself fits in the
// container's limits.
const (
	commandExecutorCPUs = 0.1
	commandExecutorMem  = 32 << 20
)

// DefaultPidsLimit bounds the processes and threads of one container unless
// Config.PidsLimit says otherwise. Mesos has no default; ours keeps a fork
// bomb from taking the developer's laptop down, and leaves room for JVMs.
const DefaultPidsLimit = 4096

// containerLimits are the scalar resources of the executor and its tasks,
// which is what Mesos' cgroups isolators enforce for a container.
func (a *Agent) containerLimits(info mesos.ExecutorInfo, builtin bool, tasks ...mesos.TaskInfo) isolation.Limits {
	var l isolation.Limits
	add := func(rs []mesos.Resource) {
		for _, r := range rs {
			switch r.Name {
			case "cpus":
				l.CPUs += r.GetScalar().GetValue()
			case "mem":
				l.MemBytes += int64(r.GetScalar().GetValue() * (1 << 20))
			}
		}
	}
	add(info.Resources)
	for _, t := range tasks {
		add(t.Resources)
	}
	if builtin {
		l.CPUs += commandExecutorCPUs
		l.MemBytes += commandExecutorMem
	}
	l.Pids = a.cfg.PidsLimit
	l.SharesOnly = !a.cfg.EnableCFS
	return l
}

// memoryLimitation reports whether the kernel OOM-killed something in ex's
// container, with the message Mesos' memory isolator gives. Called before
// the container is destroyed.
func memoryLimitation(ex *executorState) (bool, string) {
	c := ex.container
	if c == nil {
		return false, ""
	}
	oom, err := c.OOMKilled()
	if err != nil || !oom {
		return false, ""
	}
	u, _ := c.Usage()
	return true, fmt.Sprintf("Memory limit exceeded: Requested: %dMB Maximum Used: %dMB",
		ex.limits.MemBytes>>20, max(u.MemUsageBytes, u.MemLimitBytes)>>20)
}

// watchContainer polls for an OOM kill while the executor runs, so that a
// limitation ends the container even when no task process exits from it
// (Mesos listens to the cgroup's OOM notification to the same end).
func (a *Agent) watchContainer(ex *executorState) {
	if ex.container == nil || a.iso.Mode() == isolation.ModeNone {
		return
	}
	t := time.NewTicker(2 * time.Second) // exits and terminal updates are checked at once; this catches the rest
	defer t.Stop()
	for {
		select {
		case <-ex.exited:
			return
		case <-t.C:
			if a.noteLimitation(ex) {
				a.destroy(ex)
				return
			}
		}
	}
}

// noteLimitation records an OOM kill in ex's container; true when there was one.
func (a *Agent) noteLimitation(ex *executorState) bool {
	oom, msg := memoryLimitation(ex)
	if !oom {
		return false
	}
	a.mu.Lock()
	if ex.limitation == "" {
		ex.limitation = msg
		a.cfg.Logger.Warn("container memory limit exceeded", "executor", ex.info.ExecutorID.Value, "container", ex.containerID, "message", msg)
	}
	a.mu.Unlock()
	return true
}

// reapContainer runs once the executor has exited: it records an OOM kill,
// then kills whatever the executor left behind in the container (daemons,
// double forks) and removes the cgroup, as Mesos destroys a container whose
// executor terminated.
func (a *Agent) reapContainer(ex *executorState) {
	if ex.container == nil {
		return
	}
	a.noteLimitation(ex)
	if err := ex.container.Destroy(); err != nil {
		a.cfg.Logger.Warn("destroying container", "container", ex.containerID, "err", err)
	}
}

// killContainer sends SIGKILL to every process of ex's container, wherever
// it sits in the process tree.
func killContainer(ex *executorState) {
	if ex.container != nil {
		ex.container.KillAll(syscall.SIGKILL)
	}
}

// isolationFlag is the --isolation value a Mesos agent would show for mode.
func isolationFlag(m isolation.Mode) string {
	if m == isolation.ModeNone {
		return "posix/cpu,posix/mem"
	}
	return "cgroups/cpu,cgroups/mem,cgroups/pids"
}

// statistics is /monitor/statistics: each running executor's resource usage
// with Mesos' ResourceStatistics key names, which the observer and UIs read.
func (a *Agent) statistics() []map[string]any {
	out := []map[string]any{}
	for _, c := range a.liveContainers() {
		out = append(out, map[string]any{
			"executor_id": c.info.ExecutorID.Value, "executor_name": c.info.GetName(), "source": c.info.GetSource(),
			"framework_id": c.fw, "container_id": c.containerID, "statistics": a.resourceStatistics(c.container, c.limits),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["executor_id"].(string) < out[j]["executor_id"].(string) })
	return out
}

// liveContainer is what /monitor/statistics and GET_CONTAINERS show of a
// running executor's container, copied under a.mu.
type liveContainer struct {
	info        mesos.ExecutorInfo
	fw          string
	containerID string
	pid         int
	container   *isolation.Container
	limits      isolation.Limits
}

func (a *Agent) liveContainers() []liveContainer {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []liveContainer
	for _, fs := range a.frameworks {
		for _, ex := range fs.executors {
			out = append(out, liveContainer{ex.info, ex.fw, ex.containerID, ex.pid, ex.container, ex.limits})
		}
	}
	return out
}

// resourceStatistics is a container's usage as Mesos' ResourceStatistics:
// its limits always, its usage where the agent isolates containers in
// cgroups.
func (a *Agent) resourceStatistics(c *isolation.Container, l isolation.Limits) mesos.ResourceStatistics {
	cpus, mem := l.CPUs, uint64(max(0, l.MemBytes))
	st := mesos.ResourceStatistics{
		Timestamp: float64(a.cfg.Now().UnixNano()) / 1e9, CPUsLimit: &cpus, MemLimitBytes: &mem,
	}
	if c != nil && a.iso.Mode() != isolation.ModeNone {
		if u, err := c.Usage(); err == nil {
			user, sys := u.CPUUserSecs, u.CPUSystemSecs
			rss, total := uint64(max(0, u.MemRSSBytes)), uint64(max(0, u.MemUsageBytes))
			procs := uint32(max(0, u.Pids))
			st.CPUsUserTimeSecs, st.CPUsSystemTimeSecs = &user, &sys
			st.MemRSSBytes, st.MemTotalBytes, st.Processes = &rss, &total, &procs
		}
	}
	return st
}
