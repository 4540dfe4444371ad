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
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// defaultKillGrace is how long a killed command gets between SIGTERM and
// SIGKILL when the task has no kill policy (Mesos' default is 3 seconds).
const defaultKillGrace = 3 * time.Second

type runner struct {
	cfg    config.Config
	logger *slog.Logger
	send   calls.SenderFunc

	mu       sync.Mutex
	task     *mesos.TaskInfo
	cmd      *exec.Cmd
	killed   bool
	unacked  map[string]executor.Call_Update // uuid → update
	terminal string                          // uuid of the terminal update, once sent
	done     chan struct{}                   // closed when the terminal update is acknowledged
	doneOnce sync.Once
}

// Run executes the command executor, configured from the MESOS_* environment.
func Run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("executor environment: %w", err)
	}
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cli := httpcli.New(httpcli.Endpoint(endpoint.String()), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))))
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	r := &runner{
		cfg: cfg, logger: logger, unacked: map[string]executor.Call_Update{}, done: make(chan struct{}),
		send: calls.SenderWith(httpexec.NewSender(cli.Send), opts...),
	}
	subscriber := calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)

	disconnected := time.Now()
	for {
		subscribed, err := r.session(ctx, subscriber)
		if subscribed {
			// The recovery timeout counts from the last time we held a
			// subscription, not from the last failed attempt.
			disconnected = time.Now()
		}
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			r.kill(0)
			return ctx.Err()
		default:
		}
		if time.Since(disconnected) > cfg.RecoveryTimeout {
			r.kill(0)
			return fmt.Errorf("lost the agent for longer than %s: %w", cfg.RecoveryTimeout, err)
		}
		logger.Warn("agent connection lost; re-subscribing", "err", err)
		time.Sleep(min(cfg.SubscriptionBackoffMax, time.Second))
	}
}

// session subscribes and handles events until the stream ends. subscribed
// reports whether the agent accepted the subscription.
func (r *runner) session(ctx context.Context, subscriber calls.SenderFunc) (subscribed bool, err error) {
	r.mu.Lock()
	var tasks []mesos.TaskInfo
	if r.task != nil && r.terminal == "" {
		tasks = append(tasks, *r.task)
	}
	var updates []executor.Call_Update
	for _, u := range r.unacked {
		updates = append(updates, u)
	}
	r.mu.Unlock()
	resp, err := subscriber.Send(ctx, calls.NonStreaming(calls.Subscribe(tasks, updates)))
	if err != nil {
		return false, err
	}
	defer resp.Close()
	for {
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return true, errors.New("event stream ended")
			}
			return true, err
		}
		switch ev.Type {
		case executor.Event_LAUNCH:
			r.launch(ctx, ev.Launch.Task)
		case executor.Event_KILL:
			grace := defaultKillGrace
			if kp := ev.Kill.GetKillPolicy(); kp != nil && kp.GracePeriod != nil {
				grace = time.Duration(kp.GracePeriod.Nanoseconds)
			}
			go r.kill(grace)
		case executor.Event_SHUTDOWN:
			go r.kill(r.cfg.ExecutorShutdownGracePeriod)
		case executor.Event_ACKNOWLEDGED:
			r.acknowledged(ev.Acknowledged.UUID)
		case executor.Event_ERROR:
			return true, fmt.Errorf("agent error: %s", ev.Error.GetMessage())
		}
		select {
		case <-r.done:
			return true, nil
		default:
		}
	}
}

func newUUID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// update sends a status update and remembers it until it is acknowledged.
func (r *runner) update(state mesos.TaskState, msg string, reason *mesos.TaskStatus_Reason) {
	r.mu.Lock()
	if r.task == nil || r.terminal != "" {
		r.mu.Unlock()
		return
	}
	now := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID: r.task.TaskID, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &mesos.ExecutorID{Value: r.cfg.ExecutorID}, UUID: newUUID(), Timestamp: &now, Reason: reason,
	}
	if msg != "" {
		st.Message = &msg
	}
	u := calls.Update(st)
	r.unacked[string(st.UUID)] = *u.Update
	switch state {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED:
		r.terminal = string(st.UUID)
	}
	r.mu.Unlock()
	if err := calls.SendNoData(context.Background(), r.send, calls.NonStreaming(u)); err != nil {
		// It stays unacknowledged and goes out again with the next SUBSCRIBE.
		r.logger.Warn("status update not sent", "state", state, "err", err)
	}
}

func (r *runner) acknowledged(uuid []byte) {
	r.mu.Lock()
	delete(r.unacked, string(uuid))
	done := r.terminal != "" && r.terminal == string(uuid)
	r.mu.Unlock()
	if done {
		r.doneOnce.Do(func() { close(r.done) })
	}
}

func (r *runner) launch(ctx context.Context, task mesos.TaskInfo) {
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
		r.doneOnce.Do(func() { close(r.done) })
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
