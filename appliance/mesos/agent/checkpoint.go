package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/atomicfile"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Checkpoints let a restarted agent (kill -9 included) take back the
// executors that kept running without it. Like Mesos' meta dir, they live
// under <work_dir>/meta/slaves/<agent_id>/:
//
//	frameworks/<fw>/executors/<ex>/runs/<container>/run.json
//	    the framework and executor info, the executor's pid and its start
//	    time (to tell it from a reused pid), the sandbox, and every task
//	    with its last known state; rewritten whenever one of those changes
//	    and removed once the executor has exited and its tasks' terminal
//	    updates are in updates.json.
//	updates.json
//	    the status updates not yet acknowledged by their framework, in
//	    order. The agent acknowledges an executor's update only after it
//	    is here, so an update is never in neither place.
//
// Files are written to a temporary name, fsynced and renamed.

type runCheckpoint struct {
	Framework   mesos.FrameworkInfo `json:"framework_info"`
	Executor    mesos.ExecutorInfo  `json:"executor_info"`
	Builtin     bool                `json:"builtin"`
	ContainerID string              `json:"container_id"`
	Directory   string              `json:"directory"`
	PID         int                 `json:"pid"`
	PIDStart    uint64              `json:"pid_start_ticks"`
	Limits      isolation.Limits    `json:"limits"`
	Tasks       []checkpointTask    `json:"tasks"`
}

type checkpointTask struct {
	Info          mesos.TaskInfo `json:"info"`
	State         string         `json:"state"`
	Queued        bool           `json:"queued,omitempty"`
	KillRequested bool           `json:"kill_requested,omitempty"`
}

// writeFileAtomic replaces path with data durably, making its directory
// first.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

func (a *Agent) agentMetaDir() string { return filepath.Join(a.metaDir(), a.id) }

func (a *Agent) runCheckpointPath(fw, exID, containerID string) string {
	return filepath.Join(a.agentMetaDir(), "frameworks", fw, "executors", exID, "runs", containerID, "run.json")
}

// checkpointLocked records ex. Failing to checkpoint is logged, not fatal:
// the executor runs on, only recovery would miss it.
func (a *Agent) checkpointLocked(ex *executorState) {
	if a.id == "" {
		return
	}
	select {
	case <-ex.exited:
		return // forgotten already
	default:
	}
	fs := a.frameworks[ex.fw]
	cp := runCheckpoint{Executor: ex.info, Builtin: ex.builtin, ContainerID: ex.containerID,
		Directory: ex.directory, PID: ex.pid, PIDStart: ex.pidStart, Limits: ex.limits}
	if fs != nil {
		cp.Framework = fs.info
	}
	for _, t := range ex.queued {
		cp.Tasks = append(cp.Tasks, checkpointTask{Info: t, State: mesos.TASK_STAGING.String(), Queued: true})
	}
	for _, t := range ex.tasks {
		cp.Tasks = append(cp.Tasks, checkpointTask{Info: t.info, State: t.state.String(), KillRequested: t.killRequested})
	}
	b, err := json.Marshal(&cp)
	if err == nil {
		err = writeFileAtomic(a.runCheckpointPath(ex.fw, ex.info.ExecutorID.Value, ex.containerID), b)
	}
	if err != nil {
		a.cfg.Logger.Error("checkpointing executor", "executor", ex.info.ExecutorID.Value, "err", err)
	}
}

// forgetRunLocked drops ex's checkpoint once it has exited.
func (a *Agent) forgetRunLocked(ex *executorState) {
	if a.id == "" {
		return
	}
	p := a.runCheckpointPath(ex.fw, ex.info.ExecutorID.Value, ex.containerID)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.cfg.Logger.Warn("removing executor checkpoint", "path", p, "err", err)
	}
}

// procStart is a process's start time in clock ticks since boot (field 22
// of /proc/<pid>/stat): with the pid, it names one process for good.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if f[0] == "Z" {
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// waitForeign waits for a process that is not our child (an executor
// adopted after an agent restart), with a pidfd where the kernel has them.
func waitForeign(pid int, start uint64) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(fd)
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err == nil || !errors.Is(err, syscall.EINTR) {
				return
			}
		}
	}
	for {
		if s, err := procStart(pid); err != nil || s != start {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// recoverExecutors takes back the executors recorded in the meta dir. Live
// ones (same pid and start time) are adopted and get RecoveryTimeout to
// re-subscribe; the tasks of dead ones are reported failed.
func (a *Agent) recoverExecutors() {
	if a.id == "" {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(a.agentMetaDir(), "frameworks", "*", "executors", "*", "runs", "*", "run.json"))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		var cp runCheckpoint
		if err == nil {
			err = json.Unmarshal(b, &cp)
		}
		if err != nil {
			a.cfg.Logger.Error("unreadable executor checkpoint; ignoring it", "path", p, "err", err)
			continue
		}
		fwID := cp.Framework.GetID().GetValue()
		fs := a.frameworks[fwID]
		if fs == nil {
			fs = &frameworkState{info: cp.Framework, executors: map[string]*executorState{}}
			a.frameworks[fwID] = fs
		}
		ex := &executorState{
			info: cp.Executor, fw: fwID, containerID: cp.ContainerID, directory: cp.Directory, builtin: cp.Builtin,
			pid: cp.PID, pidStart: cp.PIDStart, recovered: true, limits: cp.Limits,
			queued: map[string]mesos.TaskInfo{}, tasks: map[string]*taskState{}, exited: make(chan struct{}),
		}
		for _, t := range cp.Tasks {
			if t.Queued {
				ex.queued[t.Info.TaskID.Value] = t.Info
				continue
			}
			st := mesos.TaskState(mesos.TaskState_value[t.State])
			ts := &taskState{info: t.Info, state: st, killRequested: t.KillRequested}
			if mesosutil.IsTerminal(st) {
				ex.completed = append(ex.completed, ts)
			} else {
				ex.tasks[t.Info.TaskID.Value] = ts
			}
		}
		fs.executors[cp.Executor.ExecutorID.Value] = ex
		if c, err := a.iso.Load(cp.ContainerID); err == nil {
			ex.container = c
		} else {
			a.cfg.Logger.Warn("container cgroup not found", "container", cp.ContainerID, "err", err)
		}
		start, err := procStart(cp.PID)
		if err != nil || start != cp.PIDStart {
			a.cfg.Logger.Warn("executor died while the agent was down", "executor", cp.Executor.ExecutorID.Value, "pid", cp.PID)
			ex.exitMsg = "executor terminated while the agent was down"
			go func() {
				a.reapContainer(ex)
				a.executorExited(fs, ex, "")
			}()
			continue
		}
		a.cfg.Logger.Info("recovered running executor", "executor", cp.Executor.ExecutorID.Value, "pid", cp.PID,
			"tasks", len(ex.tasks), "queued", len(ex.queued))
		go func() {
			waitForeign(ex.pid, ex.pidStart)
			a.reapContainer(ex)
			a.executorExited(fs, ex, "")
		}()
		go a.watchContainer(ex)
		go a.awaitSubscription(ex, a.cfg.RecoveryTimeout, "executor did not re-subscribe within the recovery timeout of ")
	}
}

// destroyOrphanContainers destroys the containers under the agent's cgroup
// root that no recovered executor owns (their checkpoint is gone or was
// never written), with whatever still runs in them, as Mesos destroys
// orphan containers when it recovers.
func (a *Agent) destroyOrphanContainers() {
	ids, err := a.iso.List()
	if err != nil {
		a.cfg.Logger.Warn("listing containers to recover", "err", err)
		return
	}
	known := map[string]bool{}
	a.mu.Lock()
	for _, fs := range a.frameworks {
		for _, ex := range fs.executors {
			known[ex.containerID] = true
		}
	}
	a.mu.Unlock()
	for _, id := range ids {
		if known[id] {
			continue
		}
		c, err := a.iso.Load(id)
		if err == nil {
			err = c.Destroy()
		}
		if err != nil {
			a.cfg.Logger.Warn("destroying orphan container", "container", id, "err", err)
			continue
		}
		a.cfg.Logger.Info("destroyed orphan container", "container", id)
	}
}

// awaitSubscription destroys ex if it has not subscribed within d.
func (a *Agent) awaitSubscription(ex *executorState, d time.Duration, why string) {
	select {
	case <-ex.exited:
	case <-time.After(d):
		a.mu.Lock()
		late := ex.sub == nil && !ex.subscribedOnce
		if late {
			ex.exitMsg = why + d.String()
		}
		a.mu.Unlock()
		if late {
			a.destroy(ex)
		}
	}
}
