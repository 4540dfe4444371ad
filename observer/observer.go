package observer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/executor/runner"
)

// Defaults of Config.
const (
	DefaultScanInterval = time.Second
	DefaultDiskInterval = 30 * time.Second
	DefaultMaxChunk     = 1 << 20
)

// Size limits of the checkpoint files we read.
const (
	maxHeaderBytes = 1 << 20
	maxRunnerBytes = 64 << 20
	maxConfigBytes = 4 << 20
)

// Config says what to observe.
type Config struct {
	// WorkDir is the agent work dir (Mesos --work_dir), holding slaves/.
	WorkDir string
	Logger  *slog.Logger
	// Now is the clock (default time.Now): page times, usage rates and the
	// caches below use it.
	Now func() time.Time
	// ScanInterval is how long a scan of the work dir is reused.
	ScanInterval time.Duration
	// DiskInterval is how long a sandbox's disk usage is reused.
	DiskInterval time.Duration
	// MaxChunk caps the length of a /logdata or /filedata chunk.
	MaxChunk int64
	// Hostname is shown in the pages' header (default: os.Hostname).
	Hostname string
	// ProcRoot and CgroupRoot are /proc and /sys/fs/cgroup, for tests.
	ProcRoot   string
	CgroupRoot string
	// FilesLimiter bounds the requests that read a sandbox or a checkpoint
	// in flight per client and in total; default sandboxfs.NewLimiter(0, 0)
	// (its defaults).
	FilesLimiter *sandboxfs.Limiter
}

// Observer serves the tasks found under one agent work dir.
type Observer struct {
	cfg     Config
	started time.Time

	mu       sync.Mutex
	scanned  time.Time
	refs     map[string]taskRef // by task id
	tasks    map[string]*task   // loaded checkpoints, by task id
	usage    *sampler
	requests atomic.Int64
	ckptErrs atomic.Int64
	scanDur  atomic.Int64 // nanoseconds of the last scan
}

// New returns an observer of cfg.WorkDir. It does not touch the disk until
// it serves a request.
func New(cfg Config) *Observer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.DiskInterval == 0 {
		cfg.DiskInterval = DefaultDiskInterval
	}
	if cfg.MaxChunk <= 0 {
		cfg.MaxChunk = DefaultMaxChunk
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.FilesLimiter == nil {
		cfg.FilesLimiter = sandboxfs.NewLimiter(0, 0)
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	o := &Observer{cfg: cfg, started: cfg.Now(), refs: map[string]taskRef{}, tasks: map[string]*task{}}
	o.usage = newSampler(cfg.ProcRoot, cfg.CgroupRoot, cfg.Now)
	return o
}

// taskRef is where a task was found.
type taskRef struct {
	ID          string
	RunDir      string // the executor run directory (the Mesos sandbox), for display
	SlavesDir   string // <work dir>/slaves, which the run directory is opened beneath
	AgentID     string
	FrameworkID string
	ExecutorID  string
	ContainerID string
	Active      bool      // under tasks/active (else tasks/finished)
	Mtime       time.Time // of the tasks/<active|finished>/<id> file
}

// task is a task's checkpoint, replayed.
type task struct {
	taskRef
	fingerprint string
	Header      runner.Header
	Snapshot    planner.TaskSnapshot
	// PIDs of runs, "<process>/<run>" → pid, from the records.
	PIDs map[string]int
	// Config is the tasks/<state>/<id> file when it is JSON.
	Config json.RawMessage
	// ReplayError says why the records stop applying, if they do: the state
	// shown is the one before that record.
	ReplayError string
}

func runKey(process string, run int) string { return fmt.Sprintf("%s/%d", process, run) }

// scan lists the tasks under the work dir, reusing a recent scan.
func (o *Observer) scan() map[string]taskRef {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now()
	if d := now.Sub(o.scanned); !o.scanned.IsZero() && d >= 0 && d < o.cfg.ScanInterval {
		o.dropGoneLocked()
		return o.refs
	}
	start := time.Now()
	o.refs = scanWorkDir(o.cfg.WorkDir, o.cfg.Logger)
	o.scanned = now
	o.scanDur.Store(int64(time.Since(start)))
	for id := range o.tasks {
		if _, ok := o.refs[id]; !ok {
			delete(o.tasks, id)
		}
	}
	return o.refs
}

// dropGoneLocked forgets, from a reused scan, the tasks whose run
// directory is gone (the agent's garbage collection removes a run at once),
// so that nothing lists, counts or links them. It replaces o.refs rather
// than change it: callers range over the map they got without the lock.
func (o *Observer) dropGoneLocked() {
	var gone []string
	for id, ref := range o.refs {
		if _, err := os.Lstat(ref.RunDir); errors.Is(err, fs.ErrNotExist) {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return
	}
	refs := make(map[string]taskRef, len(o.refs))
	for id, ref := range o.refs {
		refs[id] = ref
	}
	for _, id := range gone {
		delete(refs, id)
		delete(o.tasks, id)
	}
	o.refs = refs
}

// subdirs lists the real (not symlinked) directories in dir.
func subdirs(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsDir() && validName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// validName reports whether s can be one path element of ours.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func scanWorkDir(workDir string, logger *slog.Logger) map[string]taskRef {
	refs := map[string]taskRef{}
	slaves := filepath.Join(workDir, "slaves")
	for _, ag := range subdirs(slaves) {
		fws := filepath.Join(slaves, ag, "frameworks")
		for _, fw := range subdirs(fws) {
			exs := filepath.Join(fws, fw, "executors")
			for _, ex := range subdirs(exs) {
				runs := filepath.Join(exs, ex, "runs")
				for _, run := range subdirs(runs) {
					if run == "latest" {
						continue
					}
					runDir := filepath.Join(runs, run)
					// The run directory is the task user's: read it
					// beneath itself, as the sandbox is read.
					root, err := sandboxfs.OpenRun(slaves, sandboxfs.RunPath(ag, fw, ex, run))
					if err != nil {
						continue
					}
					for _, state := range []string{"active", "finished"} {
						entries := readDirIn(root, filepath.Join("checkpoints", "tasks", state))
						for _, e := range entries {
							id := e.Name()
							if !e.Type().IsRegular() || !validName(id) || strings.HasSuffix(id, ".tmp") {
								continue
							}
							info, err := e.Info()
							if err != nil {
								continue
							}
							ref := taskRef{ID: id, RunDir: runDir, SlavesDir: slaves, AgentID: ag, FrameworkID: fw, ExecutorID: ex,
								ContainerID: run, Active: state == "active", Mtime: info.ModTime()}
							// The same task in two runs (an executor relaunched): the newer wins.
							if old, ok := refs[id]; ok && old.Mtime.After(ref.Mtime) {
								logger.Debug("task in two runs", "task", id, "kept", old.RunDir, "ignored", runDir)
								continue
							}
							refs[id] = ref
						}
					}
					root.Close()
				}
			}
		}
	}
	return refs
}

// readDirIn lists a directory beneath root (nil if it cannot).
func readDirIn(root *os.Root, name string) []fs.DirEntry {
	d, _, err := sandboxfs.Open(root, name, sandboxfs.Dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	entries, _ := d.ReadDir(-1)
	return entries
}

// readLimited reads a file under root, refusing one over limit bytes.
func readLimited(root *os.Root, name string, limit int64) ([]byte, fs.FileInfo, error) {
	f, fi, err := sandboxfs.Open(root, name, sandboxfs.File)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, fi, nil
}

func statIn(root *os.Root, name string) string {
	fi, err := root.Stat(name)
	if err != nil {
		return "-"
	}
	return fmt.Sprintf("%d.%d", fi.Size(), fi.ModTime().UnixNano())
}

// task returns a task's replayed checkpoint, or nil if there is no such
// task or its checkpoint cannot be read.
func (o *Observer) task(id string) *task {
	ref, ok := o.scan()[id]
	if !ok {
		return nil
	}
	root, err := ref.openRun()
	if err != nil {
		return nil
	}
	defer root.Close()
	ckpt := filepath.Join("checkpoints", "checkpoints", id)
	state := "finished"
	if ref.Active {
		state = "active"
	}
	fp := strings.Join([]string{ref.RunDir, state, statIn(root, filepath.Join(ckpt, "header.json")), statIn(root, filepath.Join(ckpt, "runner"))}, "|")
	o.mu.Lock()
	t, ok := o.tasks[id]
	o.mu.Unlock()
	if ok && t.fingerprint == fp {
		return t
	}
	t, err = loadTask(root, ref)
	if err != nil {
		o.ckptErrs.Add(1)
		o.cfg.Logger.Warn("unreadable checkpoint", "task", id, "run", ref.RunDir, "err", err)
		return nil
	}
	t.fingerprint = fp
	o.mu.Lock()
	o.tasks[id] = t
	o.mu.Unlock()
	return t
}

func loadTask(root *os.Root, ref taskRef) (*task, error) {
	ckpt := filepath.Join("checkpoints", "checkpoints", ref.ID)
	hb, _, err := readLimited(root, filepath.Join(ckpt, "header.json"), maxHeaderBytes)
	if err != nil {
		return nil, err
	}
	t := &task{taskRef: ref, PIDs: map[string]int{}}
	if err := json.Unmarshal(hb, &t.Header); err != nil {
		return nil, fmt.Errorf("header.json: %w", err)
	}
	if t.Header.TaskID != ref.ID {
		return nil, fmt.Errorf("header.json is for task %q", t.Header.TaskID)
	}
	rb, _, err := readLimited(root, filepath.Join(ckpt, "runner"), maxRunnerBytes)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	recs, derr := planner.DecodeRecords(rb)
	p, err := planner.New(t.Header.Task, t.Header.LaunchTime)
	if err != nil {
		return nil, fmt.Errorf("header.json task: %w", err)
	}
	for i, r := range recs {
		if err := p.Apply(r); err != nil {
			t.ReplayError = fmt.Sprintf("record %d (%s): %v", i+1, r, err)
			break
		}
		if r.PID > 0 {
			t.PIDs[runKey(r.Process, r.Run)] = r.PID
		}
	}
	if derr != nil && t.ReplayError == "" {
		t.ReplayError = derr.Error()
	}
	t.Snapshot = p.Snapshot()
	state := "finished"
	if ref.Active {
		state = "active"
	}
	if cb, _, err := readLimited(root, filepath.Join("checkpoints", "tasks", state, ref.ID), maxConfigBytes); err == nil && json.Valid(cb) {
		t.Config = cb
	}
	return t, nil
}

// list returns the tasks of a type (active, finished or all), most recently
// changed first.
func (o *Observer) list(which string) []*task {
	var out []*task
	for id, ref := range o.scan() {
		if (which == "active" && !ref.Active) || (which == "finished" && ref.Active) {
			continue
		}
		if t := o.task(id); t != nil {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Mtime, out[j].Mtime
		if !a.Equal(b) {
			return a.After(b)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// counts is the number of task ids of each type.
func (o *Observer) counts() (active, finished int) {
	for _, ref := range o.scan() {
		if ref.Active {
			active++
		} else {
			finished++
		}
	}
	return active, finished
}

// openRun opens the task's run directory beneath the slaves directory.
func (ref taskRef) openRun() (*os.Root, error) {
	return sandboxfs.OpenRun(ref.SlavesDir, sandboxfs.RunPath(ref.AgentID, ref.FrameworkID, ref.ExecutorID, ref.ContainerID))
}

// sandbox opens the task's sandbox: <run dir>/sandbox, which must stay
// inside the run directory (and be a directory, not a FIFO in its place).
func (t *task) sandbox() (*os.Root, error) {
	run, err := t.openRun()
	if err != nil {
		return nil, err
	}
	defer run.Close()
	return sandboxfs.OpenRoot(run, "sandbox")
}

// sandboxPath is the sandbox's path on this host, for display.
func (t *task) sandboxPath() string { return filepath.Join(t.RunDir, "sandbox") }

// process returns a process's status from the snapshot.
func (t *task) process(name string) (planner.ProcessStatus, bool) {
	for _, p := range t.Snapshot.Processes {
		if p.Name == name {
			return p, true
		}
	}
	return planner.ProcessStatus{}, false
}

// run returns a run of a process; run < 0 is the latest.
func (t *task) run(name string, run int) (planner.RunStatus, bool) {
	p, ok := t.process(name)
	if !ok || len(p.Runs) == 0 {
		return planner.RunStatus{}, false
	}
	if run < 0 {
		return p.Runs[len(p.Runs)-1], true
	}
	for _, r := range p.Runs {
		if r.Run == run {
			return r, true
		}
	}
	return planner.RunStatus{}, false
}
