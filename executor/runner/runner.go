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
//
// # Recovery
//
// A runner created for a task that already has a checkpoint (an executor
// restarted by the agent's recovery) re-attaches to it rather than starting
// over: New replays the records, with the header's task and launch time, and
// looks at every run the checkpoint left alive. A run whose recorded pid is
// still the process it forked (same start time, from the record's pid_start;
// see identify for checkpoints without one) is adopted: it is not our child,
// so its end is noticed by polling /proc, and as its exit status cannot be
// known it is recorded LOST. A run whose process is gone is recorded LOST at
// once. LOST runs are retried by the planner's rules (reference §11.2: a
// loss is not a failure, and counts toward the 100-run cap). Finished runs
// stay finished, and a task already terminal in the checkpoint stays so:
// Run returns its state without starting anything. Orphans of the previous
// executor were reparented elsewhere and are beyond the new one's reach.
package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/atomicfile"
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
	pids    map[string]procID // "<process>/<run>" → a live run's process
	adopted []string          // runs of a previous executor, watched by polling
	// recovered is set when the runner re-attached to an existing checkpoint.
	recovered bool
}

// ErrCheckpoint marks a checkpoint that exists but cannot be replayed.
var ErrCheckpoint = errors.New("task checkpoint could not be read")

// adoptPoll is how often an adopted process is checked for its end.
const adoptPoll = 100 * time.Millisecond

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
		kills: make(chan planner.Record, 4), pids: map[string]procID{}}
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
	recovered, err := r.recover()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if recovered {
		return r, nil
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

// Recovered reports whether the runner re-attached to an existing
// checkpoint rather than starting the task afresh.
func (r *Runner) Recovered() bool { return r.recovered }

// recover re-attaches to the task's checkpoint if there is one (see the
// package doc); it reports false, and does nothing, if there is none.
func (r *Runner) recover() (bool, error) {
	dir := r.ckptDir()
	hb, err := os.ReadFile(filepath.Join(dir, "header.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var h Header
	if err := json.Unmarshal(hb, &h); err != nil {
		return false, fmt.Errorf("header: %w", err)
	}
	path := filepath.Join(dir, "runner")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	recs, err := planner.DecodeRecords(data)
	if err != nil {
		return false, err
	}
	p, err := planner.Replay(h.Task, h.LaunchTime, recs)
	if err != nil {
		return false, err
	}
	r.header, r.planner, r.recovered = h, p, true
	if err := r.reopenCheckpoint(path, data); err != nil {
		return false, err
	}
	if !p.TaskState().Terminal() {
		if err := r.writeActive(); err != nil {
			return false, err
		}
	}
	// The process of each run, as last recorded.
	forks := map[string]planner.Record{}
	for _, rec := range recs {
		if rec.Kind == planner.KindForked || (rec.Kind == planner.KindStarted && rec.PID > 0) {
			forks[runKey(rec.Process, rec.Run)] = rec
		}
	}
	now := r.cfg.Now()
	for _, ps := range p.Snapshot().Processes {
		if len(ps.Runs) == 0 {
			continue
		}
		run := ps.Runs[len(ps.Runs)-1]
		alive := run.State == planner.Forked || run.State == planner.Running
		// Killed at the end of the task without its exit seen: the
		// previous executor may have died before its SIGKILL.
		killing := run.State == planner.Killed && run.ExitCode == nil
		if !alive && !killing {
			continue
		}
		key := runKey(ps.Name, run.Run)
		rec, ok := forks[key]
		id, same := procID{}, false
		if ok {
			id, same = identify(rec.PID, rec.PIDStart, rec.Time)
		}
		switch {
		case same:
			r.cfg.Logger.Info("adopting a process of the previous executor", "process", ps.Name, "run", run.Run, "pid", id.pid)
			r.pids[key] = id
			r.adopted = append(r.adopted, key)
			if run.State == planner.Forked {
				// We exec directly: a forked run that is alive is running.
				r.apply(planner.Record{Time: now, Kind: planner.KindStarted, Process: ps.Name, Run: run.Run, PID: id.pid, PIDStart: id.start})
			}
		case alive:
			r.cfg.Logger.Warn("a process of the previous executor is gone: lost", "process", ps.Name, "run", run.Run, "pid", rec.PID)
			if err := r.apply(planner.Record{Time: now, Kind: planner.KindLost, Process: ps.Name, Run: run.Run}); err != nil {
				r.cfg.Logger.Error("loss refused by the planner", "process", ps.Name, "run", run.Run, "err", err)
			}
		}
	}
	r.cfg.Logger.Info("re-attached to the task's checkpoint", "task", h.TaskID, "state", p.TaskState(), "adopted", len(r.adopted))
	return true, nil
}

// reopenCheckpoint opens the checkpoint for appending after a replay of
// data. A torn last line (a crash in the middle of an append) is cut off,
// and a complete last line without its newline gets one, so that what is
// appended next starts a line of its own.
func (r *Runner) reopenCheckpoint(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	end := int64(len(data))
	if nl := bytes.LastIndexByte(data, '\n'); nl+1 < len(data) {
		var rec planner.Record
		if json.Unmarshal(data[nl+1:], &rec) == nil {
			_, err = f.WriteAt([]byte{'\n'}, end)
			end++
		} else {
			end = int64(nl + 1)
			err = f.Truncate(end)
		}
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return err
	}
	r.ckpt = f
	return nil
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
	if err := r.writeActive(); err != nil {
		return err
	}
	r.ckpt, err = os.OpenFile(filepath.Join(dir, "runner"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return err
}

// writeActive stores the task's configuration under tasks/active.
func (r *Runner) writeActive() error {
	active := filepath.Join(r.cfg.CheckpointRoot, "tasks", "active")
	if err := os.MkdirAll(active, 0o755); err != nil {
		return err
	}
	return writeFileSync(filepath.Join(active, r.header.TaskID), r.cfg.TaskJSON)
}

func writeFileSync(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644)
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
	for _, key := range r.adopted {
		r.watch(key, r.pids[key])
	}
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
		err = atomicfile.Rename(from, to)
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
		// The pid is checked first: an adopted process may have ended
		// and its pid been reused since the last poll.
		if id, ok := r.pids[runKey(a.Process, a.Run)]; ok && id.current() {
			r.cfg.Logger.Info("signalling process", "process", a.Process, "run", a.Run, "pid", id.pid, "signal", sig)
			SignalTree(id.pid, sig)
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
	var id procID
	if pid > 0 {
		// Read before anything can reap the process: it is our child.
		id = procID{pid, startTicks(pid)}
	}
	if err := r.apply(planner.Record{Time: now, Kind: planner.KindForked, Process: name, Run: run, PID: pid, PIDStart: id.start}); err != nil {
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
	r.pids[runKey(name, run)] = id
	// We exec bash directly, with no coordinator in between: the run is
	// running as soon as it is forked.
	r.apply(planner.Record{Time: r.cfg.Now(), Kind: planner.KindStarted, Process: name, Run: run, PID: pid, PIDStart: id.start})
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

// watch polls an adopted process, which is not our child, until it ends,
// and then records its run LOST: its exit status is beyond our reach.
func (r *Runner) watch(key string, id procID) {
	name, runStr, _ := strings.Cut(key, "/")
	run, _ := strconv.Atoi(runStr)
	go func() {
		t := time.NewTicker(adoptPoll)
		defer t.Stop()
		for id.running() {
			select {
			case <-r.done:
				return
			case <-t.C:
			}
		}
		ev := func() {
			delete(r.pids, key)
			r.cfg.Logger.Info("adopted process ended", "process", name, "run", run, "pid", id.pid)
			if err := r.apply(planner.Record{Time: r.cfg.Now(), Kind: planner.KindLost, Process: name, Run: run}); err != nil {
				r.cfg.Logger.Warn("loss refused by the planner", "process", name, "run", run, "err", err)
			}
		}
		select {
		case r.events <- ev:
		case <-r.done:
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
