// Package commandexec is the built-in command executor: what a Mesos agent
// runs for a task that has a CommandInfo and no executor of its own. It
// speaks the public v1 executor API through mesos-go's executor client, runs
// the command (`/bin/sh -c` when shell is true, Mesos' default) in the
// sandbox in its own process group, and reports TASK_STARTING, TASK_RUNNING
// and then TASK_FINISHED, TASK_FAILED or TASK_KILLED. It exits once its
// terminal update is acknowledged by the agent.
package commandexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/executor/driver"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
)

// defaultKillGrace is how long a killed command gets between SIGTERM and
// SIGKILL when the task has no kill policy (Mesos' default is 3 seconds).
const defaultKillGrace = 3 * time.Second

type runner struct {
	d      *driver.Driver
	cfg    config.Config
	logger *slog.Logger

	mu       sync.Mutex
	task     *mesos.TaskInfo
	cmd      *exec.Cmd
	killed   bool
	terminal bool
}

// Run executes the command executor, configured from the MESOS_* environment.
func Run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("executor environment: %w", err)
	}
	r := &runner{d: driver.New(cfg, logger), cfg: cfg, logger: logger}
	err = r.d.Run(ctx, r)
	if err != nil {
		r.kill(0) // the agent is gone for good, or we were stopped
	}
	return err
}

// update sends a status update; the executor is done after a terminal one.
func (r *runner) update(state mesos.TaskState, msg string, reason *mesos.TaskStatus_Reason) {
	r.mu.Lock()
	if r.task == nil || r.terminal {
		r.mu.Unlock()
		return
	}
	id := r.task.TaskID
	r.terminal = mesosutil.IsTerminal(state)
	r.mu.Unlock()
	r.d.Update(id, state, reason, msg, nil)
	if mesosutil.IsTerminal(state) {
		r.d.Finish()
	}
}

// Kill implements driver.Handler.
func (r *runner) Kill(_ mesos.TaskID, kp *mesos.KillPolicy) {
	grace := defaultKillGrace
	if kp != nil && kp.GracePeriod != nil {
		grace = time.Duration(kp.GracePeriod.Nanoseconds)
	}
	go r.kill(grace)
}

// Shutdown implements driver.Handler.
func (r *runner) Shutdown() { go r.kill(r.cfg.ExecutorShutdownGracePeriod) }

// Launch implements driver.Handler.
func (r *runner) Launch(_ context.Context, task mesos.TaskInfo) { r.launch(task) }

func (r *runner) launch(task mesos.TaskInfo) {
	r.mu.Lock()
	if r.task != nil {
		r.mu.Unlock()
		return // one task per command executor; a re-sent LAUNCH is a duplicate
	}
	r.task = &task
	r.mu.Unlock()
	r.update(mesos.TASK_STARTING, "", nil)
	c := task.Command
	if c == nil {
		r.update(mesos.TASK_FAILED, "task has no command", mesos.REASON_TASK_INVALID.Enum())
		return
	}
	var cmd *exec.Cmd
	if c.GetShell() {
		cmd = exec.Command("/bin/sh", "-c", c.GetValue())
	} else {
		cmd = exec.Command(c.GetValue())
		if len(c.Arguments) > 0 {
			cmd.Args = c.Arguments
		}
	}
	cmd.Dir = r.cfg.Sandbox
	cmd.Env = os.Environ()
	for _, v := range c.GetEnvironment().GetVariables() {
		cmd.Env = append(cmd.Env, v.Name+"="+v.GetValue())
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr // the sandbox's stdout/stderr files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.update(mesos.TASK_FAILED, "failed to start the command: "+err.Error(), mesos.REASON_COMMAND_EXECUTOR_FAILED.Enum())
		return
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	r.update(mesos.TASK_RUNNING, "", nil)
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		killed := r.killed
		r.mu.Unlock()
		switch {
		case killed:
			r.update(mesos.TASK_KILLED, "Command terminated by a kill request", nil)
		case err == nil:
			r.update(mesos.TASK_FINISHED, "Command exited with status 0", nil)
		default:
			r.update(mesos.TASK_FAILED, describeExit(err), nil)
		}
	}()
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return "Command terminated with signal " + ws.Signal().String()
			}
			return fmt.Sprintf("Command exited with status %d", ws.ExitStatus())
		}
	}
	return "Command failed: " + err.Error()
}

// kill sends SIGTERM to the command's process group, then SIGKILL after grace.
func (r *runner) kill(grace time.Duration) {
	r.mu.Lock()
	cmd := r.cmd
	r.killed = true
	noTask := r.task == nil
	r.mu.Unlock()
	if noTask {
		// Nothing launched yet: a shutdown just ends the executor.
		r.d.Finish()
		return
	}
	if cmd == nil || cmd.Process == nil {
		r.update(mesos.TASK_KILLED, "Killed before the command started", nil)
		return
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}
