package agent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/limits"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// CommandExecutorRole is the aurorabox subcommand that runs command tasks.
const CommandExecutorRole = "command-executor"

// executorState is one executor (one container). Guarded by Agent.mu.
type executorState struct {
	info           mesos.ExecutorInfo
	fw             string
	containerID    string
	directory      string
	builtin        bool      // the command executor for a plain command task
	cmd            *exec.Cmd // nil for an executor adopted after an agent restart
	pid            int
	pidStart       uint64
	recovered      bool
	subscribedOnce bool
	queued         map[string]mesos.TaskInfo // launched by the master, not yet sent to the executor
	tasks          map[string]*taskState     // sent to the executor
	completed      []*taskState
	sub            *execSubscription
	shutdown       bool // SHUTDOWN sent or the container is being destroyed
	exited         chan struct{}
	exitMsg        string
	exitStatus     *int32               // the wait status, when the agent reaped the executor itself
	container      *isolation.Container // nil until created or loaded
	limits         isolation.Limits
	limitation     string // set when the kernel OOM-killed in the container
}

type taskState struct {
	info          mesos.TaskInfo
	state         mesos.TaskState
	killRequested bool
}

// commandExecutorInfo wraps a plain command task in the built-in executor,
// named as Mesos names it.
func (a *Agent) commandExecutorInfo(fw mesos.FrameworkInfo, t mesos.TaskInfo) mesos.ExecutorInfo {
	shown := t.Command.GetValue()
	return mesos.ExecutorInfo{
		ExecutorID:  mesos.ExecutorID{Value: t.TaskID.Value},
		FrameworkID: fw.ID,
		Name:        proto.String(fmt.Sprintf("Command Executor (Task: %s) (Command: sh -c '%s')", t.TaskID.Value, shown)),
		Source:      proto.String(t.TaskID.Value),
		Command:     &mesos.CommandInfo{Value: proto.String(a.cfg.Exe), Arguments: []string{a.cfg.Exe, CommandExecutorRole}, Shell: proto.Bool(false), User: t.Command.User},
		Resources:   nil,
	}
}

// launch starts (or reuses) each task's executor and queues the task for it.
// rootAllowed is the master's word that the framework may run tasks as
// uid 0 (see rootpolicy.go).
func (a *Agent) launch(fw mesos.FrameworkInfo, tasks []mesos.TaskInfo, rootAllowed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fwID := fw.GetID().GetValue()
	fs := a.frameworks[fwID]
	if fs == nil {
		fs = &frameworkState{executors: map[string]*executorState{}}
		a.frameworks[fwID] = fs
	}
	fs.info = fw
	fs.terminating = false // the master launches for it: it is no longer being torn down
	for _, t := range tasks {
		// An executor reads events of at most limits.ExecutorEventBytes:
		// a bigger LAUNCH would never reach it, and the task would be lost
		// with its executor left waiting.
		if n := (&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}}).Size(); n > limits.ExecutorEventBytes {
			msg := fmt.Sprintf("Task too large for its executor: its launch is %d bytes, more than the %d bytes an executor reads", n, limits.ExecutorEventBytes)
			a.cfg.Logger.Warn("refusing a task too large for its executor", "task", t.TaskID.Value, "bytes", n)
			a.sendUpdateLocked(fwID, a.newStatus(t.TaskID, nil, mesos.TASK_ERROR, mesos.REASON_TASK_INVALID, msg))
			continue
		}
		var info mesos.ExecutorInfo
		builtin := t.Executor == nil
		if builtin {
			info = a.commandExecutorInfo(fw, t)
		} else {
			info = *t.Executor
		}
		if msg := a.rootRefusal(fs, info, rootAllowed); msg != "" {
			a.cfg.Logger.Warn("refusing a task that would run as root", "task", t.TaskID.Value, "framework", fwID)
			a.sendUpdateLocked(fwID, a.newStatus(t.TaskID, nil, mesos.TASK_ERROR, mesos.REASON_TASK_UNAUTHORIZED, msg))
			continue
		}
		ex := fs.executors[info.ExecutorID.Value]
		if ex != nil && ex.shutdown {
			a.agentUpdateLocked(fwID, ex, t.TaskID, mesos.TASK_LOST, mesos.REASON_EXECUTOR_TERMINATED, "executor is shutting down")
			continue
		}
		if ex == nil {
			var err error
			ex, err = a.startExecutorLocked(fs, info, builtin, t)
			if err != nil {
				a.cfg.Logger.Error("executor launch failed", "executor", info.ExecutorID.Value, "err", err)
				st := a.newStatus(t.TaskID, nil, mesos.TASK_FAILED, mesos.REASON_CONTAINER_LAUNCH_FAILED, err.Error())
				a.sendUpdateLocked(fwID, st)
				continue
			}
		}
		if ex.sub != nil {
			ex.tasks[t.TaskID.Value] = &taskState{info: t, state: mesos.TASK_STAGING}
			a.checkpointLocked(ex)
			ex.sub.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}})
		} else {
			ex.queued[t.TaskID.Value] = t
			a.checkpointLocked(ex)
		}
	}
}

// runUser is who the executor runs as: the command's user, else the
// framework's. An agent that is not root runs every executor as its own
// user (nil), as does one given no user. A root agent never runs an
// executor as root in place of a user that does not exist: that is an
// error, and the launch fails (Mesos' agent fails to chown the sandbox to
// such a user).
func runUser(cmd *mesos.CommandInfo, fw mesos.FrameworkInfo) (*user.User, error) {
	name := executorUserName(cmd, fw)
	if name == "" || os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if errors.As(err, new(user.UnknownUserError)) {
			return nil, fmt.Errorf("user %s does not exist", name)
		}
		return nil, fmt.Errorf("looking up user %s: %w", name, err)
	}
	return u, nil
}

// mkdirSearchable makes dir and the directories from base down to it: the
// path a task's user takes to its sandbox. base (the operator's work dir)
// gets the search permission for group and others that it lacks; each
// directory beneath it, the agent's own, is exactly 0711 (search, never
// read), whatever the umask or an older agent's 0755.
func mkdirSearchable(base, dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	rel, err := filepath.Rel(base, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%s is not beneath %s", dir, base)
	}
	base = filepath.Clean(base)
	d := base
	for _, part := range append([]string{"."}, strings.Split(rel, string(filepath.Separator))...) {
		d = filepath.Join(d, part)
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
		want := fi.Mode().Perm() | 0o011
		if d != base {
			want = 0o711
		}
		if fi.Mode().Perm() != want {
			if err := os.Chmod(d, want); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *Agent) startExecutorLocked(fs *frameworkState, info mesos.ExecutorInfo, builtin bool, first mesos.TaskInfo) (*executorState, error) {
	fwID := fs.info.GetID().GetValue()
	containerID := mesosutil.NewUUID()
	runs := filepath.Join(a.cfg.WorkDir, "slaves", a.id, "frameworks", fwID, "executors", info.ExecutorID.Value, "runs")
	dir := filepath.Join(runs, containerID)
	// The directories down to the run directory are search-only (0711) for
	// other users: a task's user reaches its sandbox by name and can list
	// no one else's; the run directory itself is 0700, given to the task's
	// user.
	if err := mkdirSearchable(a.cfg.WorkDir, runs); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	latest := filepath.Join(runs, "latest")
	os.Remove(latest)
	if err := os.Symlink(containerID, latest); err != nil {
		return nil, fmt.Errorf("sandbox latest link: %w", err)
	}
	cmdInfo := info.Command
	if cmdInfo == nil {
		return nil, errors.New("executor has no command")
	}
	runAs, err := runUser(cmdInfo, fs.info)
	if err != nil {
		return nil, fmt.Errorf("executor user: %w", err)
	}
	var cmd *exec.Cmd
	if cmdInfo.GetShell() {
		cmd = exec.Command("/bin/sh", "-c", cmdInfo.GetValue())
	} else {
		args := cmdInfo.Arguments
		if len(args) == 0 {
			args = []string{cmdInfo.GetValue()}
		}
		cmd = exec.Command(cmdInfo.GetValue())
		cmd.Args = args
	}
	cmd.Dir = dir
	cmd.Env = a.executorEnv(fs.info, info, dir, cmdInfo)
	if a.execKey != nil {
		cmd.Env = append(cmd.Env, EnvExecutorToken+"="+executorToken(a.execKey, fwID, info.ExecutorID.Value, containerID))
	}
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own session: an agent restart must not take executors with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	limits := a.containerLimits(info, builtin, first)
	container, err := a.iso.Create(containerID, limits)
	if err != nil {
		return nil, err
	}
	// Where the kernel can, the executor is born inside its cgroup;
	// elsewhere it joins right after the fork, before it has subscribed and
	// so before it can start anything.
	if fd, ok := container.CgroupFD(); ok {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	if u := runAs; u != nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")} {
			if err := os.Chown(p, uid, gid); err != nil {
				container.Destroy()
				return nil, fmt.Errorf("sandbox: giving it to %s: %w", u.Username, err)
			}
		}
		cmd.Env = append(cmd.Env, "USER="+u.Username, "HOME="+dir)
	}
	if err := cmd.Start(); err != nil {
		container.Destroy()
		return nil, fmt.Errorf("start executor: %w", err)
	}
	if !cmd.SysProcAttr.UseCgroupFD {
		if err := container.Add(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			container.Destroy()
			return nil, err
		}
	}
	ex := &executorState{
		container: container, limits: limits,
		info: info, fw: fwID, containerID: containerID, directory: dir, builtin: builtin, cmd: cmd,
		pid: cmd.Process.Pid, queued: map[string]mesos.TaskInfo{}, tasks: map[string]*taskState{}, exited: make(chan struct{}),
	}
	ex.pidStart, _ = procStart(ex.pid)
	fs.executors[info.ExecutorID.Value] = ex
	a.cfg.Logger.Info("executor launched", "executor", info.ExecutorID.Value, "framework", fwID, "pid", cmd.Process.Pid, "directory", dir)
	go func() {
		err := cmd.Wait()
		reason := ""
		if err != nil {
			reason = "executor terminated: " + err.Error()
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			status := int32(ws)
			a.mu.Lock()
			ex.exitStatus = &status
			a.mu.Unlock()
		}
		a.reapContainer(ex)
		a.executorExited(fs, ex, reason)
	}()
	go a.watchContainer(ex)
	go a.awaitSubscription(ex, a.cfg.ExecutorRegistrationTimeout, "executor did not register within ")
	return ex, nil
}

// executorEnv is the standard environment a Mesos agent gives an executor.
func (a *Agent) executorEnv(fw mesos.FrameworkInfo, info mesos.ExecutorInfo, dir string, cmd *mesos.CommandInfo) []string {
	checkpoint := "0"
	if fw.GetCheckpoint() {
		checkpoint = "1"
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"MESOS_FRAMEWORK_ID=" + fw.GetID().GetValue(),
		"MESOS_EXECUTOR_ID=" + info.ExecutorID.Value,
		"MESOS_DIRECTORY=" + dir,
		"MESOS_SANDBOX=" + dir,
		"MESOS_AGENT_ENDPOINT=" + a.cfg.ListenAddr,
		"MESOS_SLAVE_ID=" + a.id,
		"MESOS_SLAVE_PID=" + a.pid(),
		"MESOS_CHECKPOINT=" + checkpoint,
		"MESOS_RECOVERY_TIMEOUT=15mins",
		"MESOS_SUBSCRIPTION_BACKOFF_MAX=2secs",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=" + strconv.Itoa(int(a.cfg.ExecutorShutdownGrace.Seconds())) + "secs",
		"MESOS_HTTP_COMMAND_EXECUTOR=1",
	}
	for _, kv := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(kv); ok {
			env = append(env, kv+"="+v)
		}
	}
	env = append(env, a.cfg.ExtraEnv...)
	for _, v := range cmd.GetEnvironment().GetVariables() {
		env = append(env, v.Name+"="+v.GetValue())
	}
	return env
}

// executorExited fails the tasks an exited executor left unfinished and
// retires it. reason describes the exit when known.
func (a *Agent) executorExited(fs *frameworkState, ex *executorState, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if reason == "" {
		reason = "executor exited"
	}
	if ex.exitMsg != "" {
		reason = ex.exitMsg
	}
	a.cfg.Logger.Info("executor exited", "executor", ex.info.ExecutorID.Value, "status", reason)
	for id := range ex.queued {
		ex.tasks[id] = &taskState{info: ex.queued[id], state: mesos.TASK_STAGING}
	}
	ex.queued = map[string]mesos.TaskInfo{}
	for _, t := range ex.tasks {
		if mesosutil.IsTerminal(t.state) {
			continue
		}
		state, why, msg := mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, reason
		switch {
		case ex.limitation != "":
			why, msg = mesos.REASON_CONTAINER_LIMITATION_MEMORY, ex.limitation
		case t.killRequested:
			state = mesos.TASK_KILLED
		}
		a.agentUpdateLocked(ex.fw, ex, t.info.TaskID, state, why, msg)
	}
	if ex.sub != nil {
		ex.sub.close()
		ex.sub = nil
	}
	ex.shutdown = true
	if fs.executors[ex.info.ExecutorID.Value] == ex {
		delete(fs.executors, ex.info.ExecutorID.Value)
	}
	fs.completed = append(fs.completed, ex)
	if n := len(fs.completed); n > maxCompletedExecutors {
		fs.completed = fs.completed[n-maxCompletedExecutors:]
	}
	// The sandbox's age, for garbage collection, counts from now.
	now := a.cfg.Now()
	os.Chtimes(ex.directory, now, now)
	a.forgetRunLocked(ex)
	// The master tells the framework (a FAILURE event). Mesos does so for
	// every executor but the command executor, which the agent made up.
	if !ex.builtin {
		a.notifyMaster(agentproto.ExecutorExitedPath, agentproto.ExecutorExited{
			AgentID: a.id, FrameworkID: ex.fw, ExecutorID: ex.info.ExecutorID.Value, Status: ex.exitStatus,
		})
	}
	close(ex.exited) // last: Shutdown's callers may remove the work directory next
}

// agentUpdateLocked records and sends a status update made by the agent itself.
func (a *Agent) agentUpdateLocked(fw string, ex *executorState, id mesos.TaskID, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) {
	st := a.newStatus(id, &ex.info.ExecutorID, state, reason, msg)
	if t := ex.tasks[id.Value]; t != nil {
		t.state = state
		if mesosutil.IsTerminal(state) {
			delete(ex.tasks, id.Value)
			ex.completed = append(ex.completed, t)
		}
	}
	a.sendUpdateLocked(fw, st)
	a.checkpointLocked(ex)
}

// sendUpdateLocked hands a status update to the update manager, unless its
// framework is being torn down (nobody would acknowledge it).
func (a *Agent) sendUpdateLocked(fw string, st mesos.TaskStatus) {
	if fs := a.frameworks[fw]; fs != nil && fs.terminating {
		return
	}
	a.updates.add(fw, st)
}

func (a *Agent) newStatus(id mesos.TaskID, ex *mesos.ExecutorID, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string) mesos.TaskStatus {
	now := float64(a.cfg.Now().UnixNano()) / 1e9
	uuid := []byte(mesosutil.NewUUID())
	return mesos.TaskStatus{
		TaskID: id, State: state.Enum(), Reason: reason.Enum(), Message: &msg, Source: mesos.SOURCE_AGENT.Enum(),
		AgentID: &mesos.AgentID{Value: a.id}, ExecutorID: ex, Timestamp: &now, UUID: uuid,
	}
}

// kill asks a task's executor to kill it, or kills it directly if the
// executor never received it.
func (a *Agent) kill(fwID, taskID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fs := a.frameworks[fwID]
	if fs == nil {
		return
	}
	for _, ex := range fs.executors {
		if t, ok := ex.queued[taskID]; ok {
			delete(ex.queued, taskID)
			ex.tasks[taskID] = &taskState{info: t, state: mesos.TASK_STAGING}
			a.agentUpdateLocked(fwID, ex, t.TaskID, mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, "killed before delivery to the executor")
			if len(ex.queued) == 0 && len(ex.tasks) == 0 {
				go a.destroy(ex)
			}
			return
		}
		if t := ex.tasks[taskID]; t != nil {
			t.killRequested = true
			a.checkpointLocked(ex)
			if ex.sub != nil {
				ev := &executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: t.info.TaskID, KillPolicy: t.info.KillPolicy}}
				ex.sub.send(ev)
			} else {
				go a.destroy(ex)
			}
			return
		}
	}
}

// shutdownFramework asks the framework's executors to shut down and kills
// them after the grace period. The framework is gone from the master: its
// pending status updates are dropped and no more are sent.
func (a *Agent) shutdownFramework(fwID string) {
	a.mu.Lock()
	fs := a.frameworks[fwID]
	var exs []*executorState
	if fs != nil {
		fs.terminating = true
		for _, ex := range fs.executors {
			exs = append(exs, ex)
		}
	}
	a.mu.Unlock()
	a.updates.dropFramework(fwID)
	for _, ex := range exs {
		a.shutdownExecutor(ex)
	}
}

// shutdownExecutorByID shuts down one executor, as the framework asked
// (the scheduler's SHUTDOWN call).
func (a *Agent) shutdownExecutorByID(fwID, exID string) {
	a.mu.Lock()
	var ex *executorState
	if fs := a.frameworks[fwID]; fs != nil {
		ex = fs.executors[exID]
	}
	a.mu.Unlock()
	if ex == nil {
		a.cfg.Logger.Warn("cannot shut down an unknown executor", "framework", fwID, "executor", exID)
		return
	}
	a.shutdownExecutor(ex)
}

// frameworkMessage passes a framework's message to its executor as a
// MESSAGE event. As in Mesos, a message for an executor that is not
// subscribed (not yet, or no longer) is dropped.
func (a *Agent) frameworkMessage(fwID, exID string, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ex *executorState
	if fs := a.frameworks[fwID]; fs != nil {
		ex = fs.executors[exID]
	}
	if ex == nil || ex.sub == nil || ex.shutdown {
		a.cfg.Logger.Warn("dropping a framework message for an executor that is not running", "framework", fwID, "executor", exID)
		return
	}
	ex.sub.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: data}})
}

func (a *Agent) shutdownExecutor(ex *executorState) {
	a.mu.Lock()
	ex.shutdown = true
	for _, t := range ex.tasks {
		t.killRequested = true
	}
	if ex.sub != nil {
		ex.sub.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	}
	a.mu.Unlock()
	go func() {
		select {
		case <-ex.exited:
		case <-time.After(a.cfg.ExecutorShutdownGrace):
			a.destroy(ex)
		}
	}()
}

// destroy kills the executor's whole session and waits for it to be reaped.
func (a *Agent) destroy(ex *executorState) {
	a.mu.Lock()
	ex.shutdown = true
	pid, start := ex.pid, ex.pidStart
	a.mu.Unlock()
	// The executor leads its own session and process group. An adopted
	// one is checked first: its pid could have been reused.
	if s, err := procStart(pid); err == nil && (start == 0 || s == start) {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	killContainer(ex) // what left the session (double forks, setsid) is still in the cgroup
	<-ex.exited
}

// Shutdown stops every executor; used when the agent itself is stopped for good.
func (a *Agent) Shutdown() {
	a.mu.Lock()
	var exs []*executorState
	for _, fs := range a.frameworks {
		for _, ex := range fs.executors {
			exs = append(exs, ex)
		}
	}
	a.mu.Unlock()
	for _, ex := range exs {
		a.shutdownExecutor(ex)
	}
	for _, ex := range exs {
		<-ex.exited
	}
	if err := a.iso.Cleanup(); err != nil {
		a.cfg.Logger.Warn("removing container cgroups", "err", err)
	}
}
