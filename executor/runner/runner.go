// Package runner runs a Thermos task: it drives the pure planner
// (executor/planner) with real processes. Each run of a process is
// `/bin/bash -c <cmdline>` in the task sandbox, in its own session, as the
// role user when there is one, with stdout and stderr in
// .logs/<process>/<run>/; the executor is a child subreaper, so a task's
// orphaned daemons come back to it and get signalled at teardown.
//
// # Checkpoints
//
// Under the checkpoint root (the run directory's checkpoints/, as Thermos's
// layout in the reference's §10.2):
//
//	checkpoints/<task_id>/header.json   RunnerHeader: who, where, ports, and the
//	                                    planner.Task the records apply to
//	checkpoints/<task_id>/runner        the planner's input records, one JSON
//	                                    object per line (see package planner),
//	                                    appended and fsynced as they happen
//	tasks/active/<task_id>              the task's configuration JSON while it
//	tasks/finished/<task_id>            runs; moved here once it is terminal
//
// A reader (the observer) rebuilds every process's state and run history
// with planner.Replay(header.Task, header.LaunchTime, records).
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
)

// Header is checkpoints/<task_id>/header.json.
type Header struct {
	TaskID     string         `json:"task_id"`
	LaunchTime time.Time      `json:"launch_time"`
	Sandbox    string         `json:"sandbox"`
	LogDir     string         `json:"log_dir"`
	Hostname   string         `json:"hostname"`
	User       string         `json:"user"`
	UID        int            `json:"uid"`
	Ports      map[string]int `json:"ports"`
	Task       planner.Task   `json:"task"` // command lines interpolated
}

// Config is one task to run.
type Config struct {
	Task           planner.Task // command lines not yet interpolated
	Bindings       Bindings
	Sandbox        string     // cwd and HOME of the processes
	CheckpointRoot string     // see the package doc
	TaskJSON       []byte     // stored under tasks/active/<task_id>
	User           *user.User // nil: run as the executor's user
	Procs          *Procs
	Logger         *slog.Logger
	Now            func() time.Time
	// Path is the processes' PATH.
	Path string
}

// Runner runs one task.
type Runner struct {
	cfg     Config
	header  Header
	uid     int
	gid     int
	setuid  bool
	ckpt    *os.File
	events  chan func()
	done    chan struct{} // closed when Run returns
	kills   chan planner.Record
	mu      sync.Mutex // guards planner for Snapshot
	planner *planner.Planner
	pids    map[string]int // "<process>/<run>" → pid of a live run
}

// LogDir is where a task's process logs go.
func LogDir(sandbox string) string { return filepath.Join(sandbox, ".logs") }

// New prepares the sandbox and checkpoint for cfg. It fails, with an error
// to report as the task's failure, on an invalid task or an unbound
// template reference.
func New(cfg Config) (*Runner, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Path == "" {
		cfg.Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	task := cfg.Task
	task.Processes = append([]planner.Process(nil), cfg.Task.Processes...)
	for i, p := range task.Processes {
		cmd, err := cfg.Bindings.Interpolate(p.Cmdline)
		if err != nil {
			return nil, fmt.Errorf("process %s: %w", p.Name, err)
		}
		task.Processes[i].Cmdline = cmd
	}
	if err := planner.Validate(task); err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, uid: os.Getuid(), gid: os.Getgid(), events: make(chan func(), 64), done: make(chan struct{}),
		kills: make(chan planner.Record, 4), pids: map[string]int{}}
	if u := cfg.User; u != nil {
		r.uid, _ = strconv.Atoi(u.Uid)
		r.gid, _ = strconv.Atoi(u.Gid)
		r.setuid = r.uid != os.Getuid()
	}
	userName := cfg.Bindings.User
	r.header = Header{
		TaskID: cfg.Bindings.TaskID, LaunchTime: cfg.Now(), Sandbox: cfg.Sandbox, LogDir: LogDir(cfg.Sandbox),
		Hostname: cfg.Bindings.Hostname, User: userName, UID: r.uid, Ports: cfg.Bindings.Ports, Task: task,
	}
	// The sandbox belongs to the role and to no one else.
	for _, d := range []string{cfg.Sandbox, r.header.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if r.setuid {
			if err := os.Chown(d, r.uid, r.gid); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
		}
	}
	p, err := planner.New(task, r.header.LaunchTime)
	if err != nil {
		return nil, err
	}
	r.planner = p
	if err := r.openCheckpoint(); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return r, nil
}

func (r *Runner) ckptDir() string {
	return filepath.Join(r.cfg.CheckpointRoot, "checkpoints", r.header.TaskID)
}

func (r *Runner) openCheckpoint() error {
	dir := r.ckptDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h, err := json.MarshalIndent(r.header, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, "header.json"), h); err != nil {
		return err
	}
	active := filepath.Join(r.cfg.CheckpointRoot, "tasks", "active")
	if err := os.MkdirAll(active, 0o755); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(active, r.header.TaskID), r.cfg.TaskJSON); err != nil {
		return err
	}
	r.ckpt, err = os.OpenFile(filepath.Join(dir, "runner"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return err
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// apply feeds a record to the planner and, if it took it, to the checkpoint.
func (r *Runner) apply(rec planner.Record) error {
	r.mu.Lock()
	err := r.planner.Apply(rec)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.record(rec)
	return nil
}

func (r *Runner) record(rec planner.Record) {
	b, err := planner.EncodeRecord(rec)
	if err == nil {
		_, err = r.ckpt.Write(b)
	}
	if err == nil {
		err = r.ckpt.Sync()
	}
	if err != nil {
		r.cfg.Logger.Error("checkpoint write failed", "err", err)
	}
}

// Snapshot is the task's current state.
func (r *Runner) Snapshot() planner.TaskSnapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.planner.Snapshot()
}

// Header describes the run.
func (r *Runner) Header() Header { return r.header }

// Kill ends the task: its processes get SIGTERM, the final processes run,
// and whatever is left at now+grace gets SIGKILL; the task ends KILLED.
func (r *Runner) Kill(grace time.Duration) {
	r.kills <- planner.Record{Time: r.cfg.Now(), Kind: planner.KindKill, Grace: grace}
}

// Lose ends the task at once, LOST: everything gets SIGKILL.
func (r *Runner) Lose() {
	r.kills <- planner.Record{Time: r.cfg.Now(), Kind: planner.KindLose}
}

// Run runs the task to its terminal state and returns it. Cancelling ctx
// loses the task.
func (r *Runner) Run(ctx context.Context) planner.TaskState {
	defer r.ckpt.Close()
	defer close(r.done)
	lost := false
	for {
		now := r.cfg.Now()
		r.mu.Lock()
		d := r.planner.Next(now)
		state := r.planner.TaskState()
		r.mu.Unlock()
		if d.Tick != nil {
			r.record(*d.Tick)
		}
		for _, a := range d.Actions {
			r.act(a, now)
		}
		if state.Terminal() {
			r.awaitOrphans()
			r.finish()
			return state
		}
		if len(d.Actions) > 0 {
			continue // what was done (a fork that failed at once, say) may call for more
		}
		var wake <-chan time.Time
		var timer *time.Timer
		if !d.Wake.IsZero() {
			timer = time.NewTimer(max(d.Wake.Sub(r.cfg.Now()), time.Millisecond))
			wake = timer.C
		}
		select {
		case ev := <-r.events:
			ev()
		case rec := <-r.kills:
			if err := r.apply(rec); err != nil {
				r.cfg.Logger.Warn("kill refused", "err", err)
			}
		case <-ctx.Done():
			if !lost {
				lost = true
				r.apply(planner.Record{Time: r.cfg.Now(), Kind: planner.KindLose})
			}
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// awaitOrphans gives orphans that were sent SIGTERM until the task's
// deadline to exit (the planner cannot see them, so it does not wait for
// them), then kills what is left: nothing of the task outlives it.
func (r *Runner) awaitOrphans() {
	r.mu.Lock()
	deadline := r.planner.Snapshot().Deadline
	r.mu.Unlock()
	for len(r.cfg.Procs.Orphans()) > 0 && r.cfg.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range r.cfg.Procs.Orphans() {
		r.cfg.Logger.Info("killing orphan at the deadline", "pid", pid)
		SignalTree(pid, syscall.SIGKILL)
	}
}

// finish moves the task to tasks/finished once it is terminal.
func (r *Runner) finish() {
	from := filepath.Join(r.cfg.CheckpointRoot, "tasks", "active", r.header.TaskID)
	to := filepath.Join(r.cfg.CheckpointRoot, "tasks", "finished", r.header.TaskID)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err == nil {
		err = os.Rename(from, to)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			r.cfg.Logger.Warn("moving the task to finished", "err", err)
		}
	}
}

func runKey(name string, run int) string { return name + "/" + strconv.Itoa(run) }

func (r *Runner) act(a planner.Action, now time.Time) {
	switch a.Kind {
	case planner.Fork:
		r.fork(a.Process, a.Run, now)
	case planner.Term, planner.KillTree:
		sig := syscall.SIGTERM
		if a.Kind == planner.KillTree {
			sig = syscall.SIGKILL
		}
		if pid, ok := r.pids[runKey(a.Process, a.Run)]; ok {
			r.cfg.Logger.Info("signalling process", "process", a.Process, "run", a.Run, "pid", pid, "signal", sig)
			SignalTree(pid, sig)
		}
	case planner.TermOrphans, planner.KillOrphans:
		sig := syscall.SIGTERM
		if a.Kind == planner.KillOrphans {
			sig = syscall.SIGKILL
		}
		for _, pid := range r.cfg.Procs.Orphans() {
			r.cfg.Logger.Info("signalling orphan", "pid", pid, "signal", sig)
			SignalTree(pid, sig)
		}
	}
}

// fork starts a run. A run that cannot start at all (no bash, a log file
// that cannot be created) is recorded as forked and failed with exit code
// 127, so that the planner's retry rules apply to it as to any failure.
func (r *Runner) fork(name string, run int, now time.Time) {
	var cmdline string
	for _, p := range r.header.Task.Processes {
		if p.Name == name {
			cmdline = p.Cmdline
		}
	}
	pid, wait, err := r.start(name, run, cmdline)
	if err := r.apply(planner.Record{Time: now, Kind: planner.KindForked, Process: name, Run: run, PID: pid}); err != nil {
		r.cfg.Logger.Error("fork refused by the planner", "process", name, "run", run, "err", err)
		if pid > 0 {
			SignalTree(pid, syscall.SIGKILL)
		}
		return
	}
	if err != nil {
		// Recorded as a run that started and failed at once, with bash's
		// "could not execute" status, so the retry rules apply.
		r.cfg.Logger.Error("process failed to start", "process", name, "run", run, "err", err)
		now := r.cfg.Now()
		for _, rec := range []planner.Record{
			{Time: now, Kind: planner.KindStarted, Process: name, Run: run},
			{Time: now, Kind: planner.KindExited, Process: name, Run: run, ExitCode: 127},
		} {
			if err := r.apply(rec); err != nil {
				r.cfg.Logger.Error("planner refused a failed start", "process", name, "run", run, "err", err)
			}
		}
		return
	}
	r.cfg.Logger.Info("process started", "process", name, "run", run, "pid", pid)
	r.pids[runKey(name, run)] = pid
	// We exec bash directly, with no coordinator in between: the run is
	// running as soon as it is forked.
	r.apply(planner.Record{Time: r.cfg.Now(), Kind: planner.KindStarted, Process: name, Run: run, PID: pid})
	go func() {
		ws := <-wait
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		ev := func() {
			delete(r.pids, runKey(name, run))
			r.cfg.Logger.Info("process exited", "process", name, "run", run, "pid", pid, "code", code)
			if err := r.apply(planner.Record{Time: r.cfg.Now(), Kind: planner.KindExited, Process: name, Run: run, ExitCode: code}); err != nil {
				r.cfg.Logger.Warn("exit refused by the planner", "process", name, "run", run, "err", err)
			}
		}
		select {
		case r.events <- ev:
		case <-r.done: // the task is over; nothing to record
		}
	}()
}

// start launches /bin/bash -c cmdline for a run.
func (r *Runner) start(name string, run int, cmdline string) (int, <-chan syscall.WaitStatus, error) {
	dir := filepath.Join(r.header.LogDir, name, strconv.Itoa(run))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, nil, err
	}
	if r.setuid {
		for _, d := range []string{filepath.Join(r.header.LogDir, name), dir} {
			os.Chown(d, r.uid, r.gid)
		}
	}
	open := func(n string) (*os.File, error) {
		f, err := os.OpenFile(filepath.Join(dir, n), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err == nil && r.setuid {
			f.Chown(r.uid, r.gid)
		}
		return f, err
	}
	stdout, err := open("stdout")
	if err != nil {
		return 0, nil, err
	}
	defer stdout.Close()
	stderr, err := open("stderr")
	if err != nil {
		return 0, nil, err
	}
	defer stderr.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	user := r.header.User
	env := []string{"HOME=" + r.cfg.Sandbox, "USER=" + user, "LOGNAME=" + user, "PATH=" + r.cfg.Path}
	// The profile is read when each process is forked, so a process can
	// write it for the ones after it.
	if profile := filepath.Join(r.cfg.Sandbox, ".thermos_profile"); fileExists(profile) {
		env = append(env, "BASH_ENV="+profile)
	}
	attr := &os.ProcAttr{
		Dir: r.cfg.Sandbox, Env: env, Files: []*os.File{devnull, stdout, stderr},
		Sys: &syscall.SysProcAttr{Setsid: true},
	}
	if r.setuid {
		attr.Sys.Credential = &syscall.Credential{Uid: uint32(r.uid), Gid: uint32(r.gid)}
	}
	return r.cfg.Procs.Start("/bin/bash", []string{"/bin/bash", "-c", cmdline}, attr)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
