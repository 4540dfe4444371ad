// Package executor is aurorabox's Thermos-equivalent executor, launched by
// the agent once per Aurora task (`aurorabox executor`). It speaks only the
// public Mesos v1 executor API and reads the standard MESOS_* environment,
// so it runs under a real Mesos agent too.
//
// It decodes the assigned task from TaskInfo.data (package assigned), runs
// its processes with Thermos semantics (packages planner and runner), gates
// TASK_RUNNING on health checks (package health), announces the task in a
// ZooKeeper ServerSet (package announcer), and on KILL or SHUTDOWN tears the
// task down as Aurora's executor does (reference §6.3): POST
// /quitquitquit, then /abortabortabort, on the health port, each with its
// wait, then SIGTERM to the process trees, the final processes, and SIGKILL
// at the deadline.
package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// NoSetuid runs processes as the executor's user even when the role
	// user exists (Aurora's --nosetuid).
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
	e := &thermos{cfg: cfg, env: env, procs: procs, d: driver.New(env, cfg.Logger), ctx: ctx, log: cfg.Logger}
	err = e.d.Run(ctx, e)
	if err != nil {
		// The agent is gone for good (or we were stopped): take the
		// task down with us rather than leave it unsupervised.
		e.teardown(mesos.TASK_LOST, "executor lost its agent", 5*time.Second)
	}
	e.wait()
	return err
}

type thermos struct {
	cfg   Config
	env   config.Config
	procs *runner.Procs
	d     *driver.Driver
	ctx   context.Context
	log   *slog.Logger

	mu       sync.Mutex
	taskID   *mesos.TaskID
	at       *assigned.AssignedTask
	job      *assigned.Job
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
func (e *thermos) Launch(task mesos.TaskInfo) {
	e.mu.Lock()
	if e.taskID != nil {
		e.mu.Unlock()
		e.log.Warn("second task refused: one task per executor", "task", task.TaskID.Value)
		return
	}
	e.taskID = &task.TaskID
	e.finished = make(chan struct{})
	e.mu.Unlock()
	go e.launch(task)
}

// Kill implements driver.Handler.
func (e *thermos) Kill(mesos.TaskID, *mesos.KillPolicy) {
	go e.teardown(mesos.TASK_KILLED, "Killed by the scheduler", PreemptionWait)
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
	go e.teardown(mesos.TASK_KILLED, "Executor shutting down", grace)
}

func (e *thermos) update(state mesos.TaskState, reason *mesos.TaskStatus_Reason, msg string) {
	e.mu.Lock()
	id := *e.taskID
	e.mu.Unlock()
	e.d.Update(id, state, reason, msg, nil)
}

// fail ends a task that could not start.
func (e *thermos) fail(reason *mesos.TaskStatus_Reason, msg string) {
	e.log.Error("task failed to start", "message", msg)
	e.once.Do(func() {
		e.update(mesos.TASK_FAILED, reason, msg)
		close(e.finished)
		e.d.Finish()
	})
}

func (e *thermos) launch(task mesos.TaskInfo) {
	e.update(mesos.TASK_STARTING, nil, "")
	at, job, err := assigned.Decode(task.Data)
	if err != nil {
		e.log.Error("undecodable task", "err", err)
		e.fail(mesos.REASON_TASK_INVALID.Enum(), "Could not deserialize task.")
		return
	}
	role := job.Role
	if role == "" {
		role = at.Task.Job.Role
	}
	var u *user.User
	if !e.cfg.NoSetuid && os.Geteuid() == 0 {
		if lu, err := user.Lookup(role); err == nil {
			u = lu
		}
	}
	userName := role
	if u == nil {
		if cur, err := user.Current(); err == nil && userName == "" {
			userName = cur.Username
		}
	}
	host := at.SlaveHost
	if host == "" {
		host, _ = os.Hostname()
	}
	sandboxRoot := e.env.Sandbox
	if sandboxRoot == "" {
		sandboxRoot = e.env.Directory
	}
	if u != nil && !canReach(filepath.Dir(sandboxRoot), u) {
		e.log.Warn("the role user cannot reach the sandbox; running the task as the executor's user",
			"role", role, "sandbox", sandboxRoot)
		u = nil
	}
	if u != nil {
		// The role must reach its sandbox inside the run directory, which
		// the agent made 0700 for the executor's user (§10.2: the run
		// directory belongs to the role).
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(sandboxRoot, uid, gid); err != nil {
			e.fail(mesos.REASON_EXECUTOR_TERMINATED.Enum(), "Could not give the sandbox to "+role+": "+err.Error())
			return
		}
	}
	r, err := runner.New(runner.Config{
		Task: plannerTask(job.Task),
		Bindings: runner.Bindings{Ports: at.AssignedPorts, TaskID: at.TaskID, User: userName,
			Instance: at.InstanceID, Hostname: host},
		Sandbox:        filepath.Join(sandboxRoot, "sandbox"),
		CheckpointRoot: filepath.Join(sandboxRoot, "checkpoints"),
		TaskJSON:       []byte(at.Task.ExecutorConfig.Data),
		User:           u,
		Procs:          e.procs,
		Logger:         e.log,
	})
	if err != nil {
		e.fail(mesos.REASON_TASK_INVALID.Enum(), "Task is invalid: "+err.Error())
		return
	}
	if b, err := json.MarshalIndent(r.Header().Task, "", "  "); err == nil {
		os.WriteFile(filepath.Join(sandboxRoot, "task.json"), b, 0o644)
	}
	aux, stopAux := context.WithCancel(e.ctx)
	e.mu.Lock()
	e.at, e.job, e.run, e.stopAux = at, job, r, stopAux
	e.runDone = make(chan struct{})
	e.mu.Unlock()
	go func() {
		state := r.Run(e.ctx)
		e.mu.Lock()
		e.final = state
		e.mu.Unlock()
		close(e.runDone)
		// A task that ends on its own reports how it ended.
		e.teardown(mesos.TASK_FINISHED, "", 0)
	}()
	e.startChecks(aux, r, at, job, u, host)
}

// plannerTask turns the job's Thermos task into the planner's, with
// Aurora's defaults.
func plannerTask(t assigned.Task) planner.Task {
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
func mesosState(s planner.TaskState) (mesos.TaskState, string) {
	switch s {
	case planner.TaskSuccess:
		return mesos.TASK_FINISHED, "Task finished."
	case planner.TaskFailed:
		return mesos.TASK_FAILED, "Task failed."
	case planner.TaskKilled:
		return mesos.TASK_KILLED, "Task killed."
	default:
		return mesos.TASK_LOST, "Task lost."
	}
}

// teardown ends the task: state and msg are what to report unless the
// runner ended on its own first (then its state wins). grace bounds the
// runner's cleanup after the HTTP lifecycle steps.
func (e *thermos) teardown(state mesos.TaskState, msg string, grace time.Duration) {
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
		e.once.Do(func() {
			e.update(state, nil, msg)
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
	rs, rmsg := mesosState(final)
	switch {
	case finishedEarly || state == mesos.TASK_FINISHED:
		state, msg = rs, rmsg
	case state == mesos.TASK_FAILED:
		// A health failure: its message, whatever the runner says.
	case final == planner.TaskKilled || final == planner.TaskSuccess || final == planner.TaskFailed:
		// Killed on request: the kill is what happened.
	default:
		state, msg = rs, rmsg
	}
	e.once.Do(func() {
		e.update(state, nil, msg)
		close(e.finished)
		e.d.Finish()
	})
}

// lifecycle asks the task to stop over HTTP (§6.3): POST the graceful
// endpoint and wait for the task to end, then the shutdown endpoint. A wait
// happens only if the POST got an HTTP response.
func (e *thermos) lifecycle(port int, lc assigned.Lifecycle, done <-chan struct{}) {
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
