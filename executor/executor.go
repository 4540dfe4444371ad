// Package executor is aurorabox's Thermos-equivalent executor, launched by
// the agent once per Aurora task (`aurorabox executor`). It speaks only the
// public Mesos v1 executor API and reads the standard MESOS_* environment,
// so it runs under a real Mesos agent too.
//
// It decodes the assigned task from TaskInfo.data (package assigned), runs
// its processes with Thermos semantics (packages planner and runner), sends
// TASK_RUNNING once they are started and fails the task on failing health
// checks (package health), as Aurora 0.11's executor, announces the task in a
// ZooKeeper ServerSet (package announcer), and on KILL or SHUTDOWN tears the
// task down as Aurora's executor does (reference §6.3): POST
// /quitquitquit, then /abortabortabort, on the health port, each with its
// wait, then SIGTERM to the process trees, the final processes, and SIGKILL
// at the deadline.
//
// # Terminal updates
//
// Every terminal update carries the message Aurora's executor sends for the
// same cause (its StatusResult reasons) and, where Mesos defines a reason
// that fits, that reason. Thermos itself sets no Mesos reason at all; Mesos
// asks custom executors to keep to a few (docs/task-state-reasons.md), and
// has none for a task that finished, failed on its own or was killed on
// request, so those go without one, as from Mesos' own executors.
//
//	cause                          state          reason                                   message
//	the task ended on its own      FINISHED       -                                        Task finished.
//	                               FAILED         -                                        Task failed.
//	                               KILLED, LOST   -                                        Task killed. / Task lost.
//	KILL                           KILLED         -                                        Instructed to kill task.
//	SHUTDOWN                       KILLED         -                                        Told to shut down executor.
//	killed before the runner ran   KILLED         REASON_TASK_KILLED_DURING_LAUNCH         Task killed during initialization.
//	health check failure           FAILED         REASON_TASK_HEALTH_CHECK_STATUS_UPDATED  Failed health check! <reason>
//	undecodable or invalid task    FAILED         REASON_TASK_INVALID                      Could not deserialize task. / Task is invalid: ...
//	                                                                                       / Invalid health check: ...
//	sandbox set-up failure         FAILED         REASON_EXECUTOR_TERMINATED               Failed to initialize sandbox: ...
//	(also: no such role user, or it
//	cannot reach the sandbox)
//	announcer failure              FAILED         -                                        Creating Announcer Serverset timed out. / Announcer: ...
//	unreadable checkpoint          LOST           -                                        Task checkpoint could not be read.
//	the agent is gone for good     LOST           REASON_EXECUTOR_REREGISTRATION_TIMEOUT   Executor lost its agent.
//
// A task that ends on its own while it is being killed still reports the
// kill (state and message), as Aurora does; one that ended before the kill
// or shutdown arrived reports how it ended.
//
// # Recovery
//
// An executor launched for a task whose checkpoint is already in the sandbox
// (restarted by the agent's recovery) re-attaches to it (package runner):
// it adopts the processes still running, and a task already terminal in the
// checkpoint reports that terminal state at once.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/executor/announcer"
	"github.com/aurorabox/aurorabox/executor/assigned"
	"github.com/aurorabox/aurorabox/executor/driver"
	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/executor/runner"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
)

// PreemptionWait bounds the runner's CLEANING and FINALIZING after a kill
// (Thermos's THERMOS_PREEMPTION_WAIT).
const PreemptionWait = 60 * time.Second

// Config configures the executor beyond its MESOS_* environment.
type Config struct {
	// AnnouncerEnsemble is the ZooKeeper ensemble for ServerSet
	// announcements (host:port,...); empty disables announcing.
	AnnouncerEnsemble string
	// AnnouncerServersetPath is the announcements' base path (default /aurora).
	AnnouncerServersetPath string
	// AnnouncerHostname overrides the announced host (default: the agent's).
	AnnouncerHostname string
	// AnnouncerAllowCustomServersetPath lets a job's Announcer zk_path
	// replace the ServerSet path made from its job key (Aurora's
	// --announcer-allow-custom-serverset-path); without it, such a task is
	// invalid.
	AnnouncerAllowCustomServersetPath bool
	// NoSetuid runs processes as the executor's user rather than the role
	// user (Aurora's --nosetuid). Without it, an executor running as root
	// runs each task as its role's user, and fails a task whose role user
	// does not exist.
	NoSetuid bool
	Logger   *slog.Logger
}

// Run runs the executor until its task is over and the agent has its
// terminal update.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AnnouncerServersetPath == "" {
		cfg.AnnouncerServersetPath = "/aurora"
	}
	env, err := config.FromEnv()
	if err != nil {
		return fmt.Errorf("executor environment: %w", err)
	}
	procs, err := runner.NewProcs()
	if err != nil {
		return err
	}
	defer procs.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e := &thermos{cfg: cfg, env: env, procs: procs, d: driver.New(env, cfg.Logger), log: cfg.Logger}
	err = e.d.Run(ctx, e)
	if err != nil {
		// The agent is gone for good (or we were stopped): take the
		// task down with us rather than leave it unsupervised.
		e.teardown(status{mesos.TASK_LOST, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT.Enum(), "Executor lost its agent."}, 5*time.Second)
	}
	e.wait()
	return err
}

type thermos struct {
	cfg   Config
	env   config.Config
	procs *runner.Procs
	d     *driver.Driver
	log   *slog.Logger

	mu       sync.Mutex
	taskID   *mesos.TaskID
	at       *api.AssignedTask
	job      *schema.Job
	run      *runner.Runner
	runDone  chan struct{} // closed when the runner has returned
	final    planner.TaskState
	running  bool // TASK_RUNNING sent
	tearing  bool // teardown started
	stopAux  context.CancelFunc
	aux      sync.WaitGroup // the announcer, which must be gone before the terminal update
	finished chan struct{}  // closed once the terminal update is sent
	once     sync.Once
}

// Launch implements driver.Handler.
func (e *thermos) Launch(ctx context.Context, task mesos.TaskInfo) {
	e.mu.Lock()
	if e.taskID != nil {
		e.mu.Unlock()
		e.log.Warn("second task refused: one task per executor", "task", task.TaskID.Value)
		return
	}
	e.taskID = &task.TaskID
	e.finished = make(chan struct{})
	e.mu.Unlock()
	go e.launch(ctx, task)
}

// status is a terminal update: its state, its Mesos reason (nil where
// Mesos has none that fits) and its message; see the package doc.
type status struct {
	state  mesos.TaskState
	reason *mesos.TaskStatus_Reason
	msg    string
}

// ownEnd asks teardown to report how the task itself ended.
var ownEnd = status{state: mesos.TASK_FINISHED}

// healthFailure is the end of a task that failed its health checks.
func healthFailure(msg string) status {
	return status{mesos.TASK_FAILED, mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum(), msg}
}

// Kill implements driver.Handler.
func (e *thermos) Kill(mesos.TaskID, *mesos.KillPolicy) {
	go e.teardown(status{mesos.TASK_KILLED, nil, "Instructed to kill task."}, PreemptionWait)
}

// Shutdown implements driver.Handler: the agent allows its shutdown grace
// period, so the deadline is shorter than for a kill.
func (e *thermos) Shutdown() {
	e.mu.Lock()
	noTask := e.taskID == nil
	e.mu.Unlock()
	if noTask {
		e.d.Finish()
		return
	}
	grace := max(e.env.ExecutorShutdownGracePeriod-time.Second, time.Second)
	go e.teardown(status{mesos.TASK_KILLED, nil, "Told to shut down executor."}, grace)
}

func (e *thermos) update(state mesos.TaskState, reason *mesos.TaskStatus_Reason, msg string) {
	e.mu.Lock()
	id := *e.taskID
	e.mu.Unlock()
	e.d.Update(id, state, reason, msg, nil)
}

// fail ends a task that could not start.
func (e *thermos) fail(st status) {
	e.log.Error("task failed to start", "state", st.state, "message", st.msg)
	e.once.Do(func() {
		e.update(st.state, st.reason, st.msg)
		close(e.finished)
		e.d.Finish()
	})
}

func (e *thermos) launch(ctx context.Context, task mesos.TaskInfo) {
	e.update(mesos.TASK_STARTING, nil, "")
	at, job, err := assigned.Decode(task.Data)
	if err != nil {
		e.log.Error("undecodable task", "err", err)
		e.fail(status{mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "Could not deserialize task."})
		return
	}
	if err := e.checkIdentity(at, job); err != nil {
		e.fail(status{mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "Task is invalid: " + err.Error()})
		return
	}
	role := at.Task.Job.Role
	host := at.SlaveHost
	if host == "" {
		host, _ = os.Hostname()
	}
	sandboxRoot := e.env.Sandbox
	if sandboxRoot == "" {
		sandboxRoot = e.env.Directory
	}
	u, err := e.taskUser(role, sandboxRoot)
	if err != nil {
		e.fail(status{mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED.Enum(), "Failed to initialize sandbox: " + err.Error()})
		return
	}
	ports, err := announcer.TaskPorts(job.Announce, at.AssignedPorts)
	if err != nil {
		e.fail(status{mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "Task is invalid: " + err.Error()})
		return
	}
	r, err := runner.New(runner.Config{
		Task: plannerTask(job.Task),
		Bindings: runner.Bindings{Ports: ports, TaskID: at.TaskID, User: role,
			Instance: at.InstanceID, Hostname: host},
		Sandbox:        filepath.Join(sandboxRoot, "sandbox"),
		CheckpointRoot: filepath.Join(sandboxRoot, "checkpoints"),
		TaskJSON:       []byte(at.Task.ExecutorConfig.Data),
		User:           u,
		Procs:          e.procs,
		Logger:         e.log,
	})
	if errors.Is(err, runner.ErrCheckpoint) {
		e.log.Error("the task's checkpoint cannot be replayed", "err", err)
		e.fail(status{mesos.TASK_LOST, nil, "Task checkpoint could not be read."})
		return
	}
	if err != nil {
		e.fail(status{mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "Task is invalid: " + err.Error()})
		return
	}
	over := false
	if r.Recovered() {
		state := r.Snapshot().State
		over = state.Terminal()
		e.log.Info("re-attached to the task's checkpoint", "state", state)
	}
	if b, err := json.MarshalIndent(r.Header().Task, "", "  "); err == nil {
		os.WriteFile(filepath.Join(sandboxRoot, "task.json"), b, 0o644)
	}
	aux, stopAux := context.WithCancel(ctx)
	e.mu.Lock()
	if e.tearing {
		// Killed while it was being set up: that has been reported, and
		// nothing may start now.
		e.mu.Unlock()
		stopAux()
		return
	}
	e.at, e.job, e.run, e.stopAux = at, job, r, stopAux
	e.runDone = make(chan struct{})
	e.mu.Unlock()
	go func() {
		state := r.Run(ctx)
		e.mu.Lock()
		e.final = state
		e.mu.Unlock()
		close(e.runDone)
		// A task that ends on its own reports how it ended.
		e.teardown(ownEnd, 0)
	}()
	if over {
		return // a task that ended before the restart is only reported
	}
	// As Aurora 0.11's executor: TASK_RUNNING once the runner has started
	// the task's processes; health checks then only decide whether it must
	// fail (later Aurora releases gate RUNNING on them instead).
	e.markRunning()
	e.startChecks(aux, r, at, job, u, host)
}

// plannerTask turns the job's Thermos task into the planner's, with
// Aurora's defaults.
func plannerTask(t schema.Task) planner.Task {
	pt := planner.Task{
		Name: t.Name, MaxFailures: t.MaxFailuresOrDefault(), MaxConcurrency: t.MaxConcurrency,
		FinalizationWait: t.FinalizationWaitOrDefault(),
	}
	for _, p := range t.Processes {
		pt.Processes = append(pt.Processes, planner.Process{
			Name: p.Name, Cmdline: p.Cmdline, MaxFailures: p.MaxFailuresOrDefault(), Daemon: p.Daemon,
			Ephemeral: p.Ephemeral, Final: p.Final, MinDuration: p.MinDurationOrDefault(),
		})
	}
	for _, c := range t.Constraints {
		pt.Order = append(pt.Order, c.Order)
	}
	if pt.Name == "" && len(pt.Processes) > 0 {
		pt.Name = pt.Processes[0].Name
	}
	return pt
}

// markRunning sends TASK_RUNNING once, unless the task is being torn down.
func (e *thermos) markRunning() {
	e.mu.Lock()
	if e.running || e.tearing {
		e.mu.Unlock()
		return
	}
	e.running = true
	e.mu.Unlock()
	e.update(mesos.TASK_RUNNING, nil, "")
}

// mesosState maps the runner's terminal state to Mesos (Aurora's
// ThermosTaskRunner.EXIT_STATE_MAP).
func mesosState(s planner.TaskState) status {
	switch s {
	case planner.TaskSuccess:
		return status{mesos.TASK_FINISHED, nil, "Task finished."}
	case planner.TaskFailed:
		return status{mesos.TASK_FAILED, nil, "Task failed."}
	case planner.TaskKilled:
		return status{mesos.TASK_KILLED, nil, "Task killed."}
	default:
		return status{mesos.TASK_LOST, nil, "Task lost."}
	}
}

// teardown ends the task: st is what to report unless the runner ended on
// its own first (then its state wins). grace bounds the runner's cleanup
// after the HTTP lifecycle steps.
func (e *thermos) teardown(st status, grace time.Duration) {
	e.mu.Lock()
	if e.tearing || e.taskID == nil {
		e.mu.Unlock()
		return
	}
	e.tearing = true
	r, done, at, job, stopAux := e.run, e.runDone, e.at, e.job, e.stopAux
	e.mu.Unlock()
	if stopAux != nil {
		stopAux() // health checks and announcements end first
		e.aux.Wait()
	}
	if r == nil {
		// Killed before the task was set up.
		if st.state == mesos.TASK_KILLED {
			st = status{mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH.Enum(), "Task killed during initialization."}
		}
		e.once.Do(func() {
			e.update(st.state, st.reason, st.msg)
			close(e.finished)
			e.d.Finish()
		})
		return
	}
	finishedEarly := isClosed(done)
	if !finishedEarly {
		if lc := job.LifecycleOrDefault(); lc.Port != "" {
			if port, ok := at.AssignedPorts[lc.Port]; ok {
				e.lifecycle(port, lc, done)
			}
		}
		select {
		case <-done:
		default:
			r.Kill(grace)
		}
		<-done
	}
	e.mu.Lock()
	final := e.final
	e.mu.Unlock()
	switch {
	case finishedEarly || st == ownEnd:
		st = mesosState(final)
	case st.state == mesos.TASK_FAILED:
		// A health (or announcer) failure: its message, whatever the
		// runner says.
	case final == planner.TaskKilled || final == planner.TaskSuccess || final == planner.TaskFailed:
		// Killed on request: the kill is what happened.
	default:
		st = mesosState(final)
	}
	e.once.Do(func() {
		e.update(st.state, st.reason, st.msg)
		close(e.finished)
		e.d.Finish()
	})
}

// lifecycle asks the task to stop over HTTP (§6.3): POST the graceful
// endpoint and wait for the task to end, then the shutdown endpoint. A wait
// happens only if the POST got an HTTP response.
func (e *thermos) lifecycle(port int, lc schema.Lifecycle, done <-chan struct{}) {
	for _, step := range []struct {
		endpoint string
		wait     time.Duration
	}{{lc.GracefulShutdownEndpoint, lc.GracefulShutdownWait}, {lc.ShutdownEndpoint, lc.ShutdownWait}} {
		if !post(port, step.endpoint) {
			continue
		}
		e.log.Info("lifecycle endpoint answered; waiting for the task", "endpoint", step.endpoint, "wait", step.wait)
		select {
		case <-done:
			return
		case <-time.After(step.wait):
		}
	}
}

func post(port int, endpoint string) bool {
	if !strings.HasPrefix(endpoint, "/") {
		endpoint = "/" + endpoint
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post("http://localhost:"+strconv.Itoa(port)+endpoint, "text/plain", nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// wait blocks until a launched task's terminal update has been sent.
func (e *thermos) wait() {
	e.mu.Lock()
	f := e.finished
	e.mu.Unlock()
	if f != nil {
		<-f
	}
}
