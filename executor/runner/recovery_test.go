package runner

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
)

// crashHelperEnv names the run directory in which the test binary, started
// as a helper, runs recoveryTask until it is SIGKILLed: an executor that
// crashes and leaves its processes running.
const crashHelperEnv = "AURORABOX_RUNNER_CRASH_HELPER"

// recoveryTask has a process that finishes (done) and three that run until
// stopped: one that outlives the crash (long), one that dies while no
// executor is there (dies), and one that dies under the new executor's
// watch (watched).
func recoveryTask() planner.Task {
	return planner.DefaultTask("recovery",
		proc("done", "true"), proc("long", "sleep 3600"), proc("dies", "sleep 3600"), proc("watched", "sleep 3600"))
}

func crashHelper(dir string) {
	r, err := New(testConfig(dir, recoveryTask(), slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		panic(err)
	}
	r.Run(context.Background()) // until SIGKILL
	os.Exit(3)
}

// ckptPath is the runner checkpoint of the test task in dir.
func ckptPath(dir string) string {
	return filepath.Join(dir, "checkpoints", "checkpoints", "task-1", "runner")
}

// replayDir rebuilds the planner from dir's checkpoint, as an observer
// would, and returns the pid records too.
func replayDir(t *testing.T, dir string) (*planner.Planner, []planner.Record) {
	t.Helper()
	data, err := os.ReadFile(ckptPath(dir))
	if err != nil {
		return nil, nil
	}
	recs, err := planner.DecodeRecords(data)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	p, err := planner.Replay(recoveryTask(), time.Unix(0, 0), recs)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return p, recs
}

// started returns the process of each started run, by "<process>/<run>".
func started(recs []planner.Record) map[string]procID {
	out := map[string]procID{}
	for _, r := range recs {
		if r.Kind == planner.KindStarted {
			out[runKey(r.Process, r.Run)] = procID{r.PID, r.PIDStart}
		}
	}
	return out
}

func state(p *planner.Planner, name string) planner.ProcessStatus {
	s, _ := p.Process(name)
	return s
}

// An executor that crashes leaves its processes running; the next one
// re-attaches to the checkpoint: it adopts the live ones, records the one
// that died meanwhile LOST and runs it again, notices when an adopted one
// ends, leaves the finished one alone, and kills what is left at teardown.
func TestRecoveryAdoptsLiveProcesses(t *testing.T) {
	dir := t.TempDir()
	self, _ := os.Executable()
	logf, err := os.Create(filepath.Join(dir, "helper.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	helper, helperDone, err := testProcs.Start(self, []string{self}, &os.ProcAttr{
		Env: append(os.Environ(), crashHelperEnv+"="+dir), Files: []*os.File{devnull, logf, logf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(helper, syscall.SIGKILL)
		if _, recs := replayDir(t, dir); recs != nil {
			for _, id := range started(recs) {
				if id.running() {
					syscall.Kill(id.pid, syscall.SIGKILL)
				}
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("crashed executor's log:\n%s", b)
		}
	})

	waitFor(t, "the first executor to run the task", func() bool {
		p, _ := replayDir(t, dir)
		return p != nil && state(p, "done").State == planner.Success && state(p, "long").State == planner.Running &&
			state(p, "dies").State == planner.Running && state(p, "watched").State == planner.Running
	})
	// The crash: the executor dies, in the middle of an append.
	syscall.Kill(helper, syscall.SIGKILL)
	<-helperDone
	_, recs := replayDir(t, dir)
	procs := started(recs)
	long, dies, watched := procs["long/0"], procs["dies/0"], procs["watched/0"]
	for name, id := range map[string]procID{"long": long, "dies": dies, "watched": watched} {
		if id.pid == 0 || id.start == 0 {
			t.Fatalf("%s: no pid and start time in the checkpoint: %+v", name, id)
		}
		if !id.running() {
			t.Fatalf("%s did not survive its executor", name)
		}
	}
	f, _ := os.OpenFile(ckptPath(dir), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2024-05-01T08:0`)
	f.Close()
	// One process dies while no executor is there.
	syscall.Kill(dies.pid, syscall.SIGKILL)
	waitFor(t, "dies to die", func() bool { return !dies.running() })

	r, _ := newRunnerIn(t, dir, recoveryTask())
	if !r.Recovered() {
		t.Fatal("the new runner did not re-attach to the checkpoint")
	}
	snap := r.Snapshot()
	if s := snap.Processes[0]; s.State != planner.Success || len(s.Runs) != 1 {
		t.Errorf("done: %s after %d runs, want SUCCESS after 1", s.State, len(s.Runs))
	}
	if s := snap.Processes[2]; s.Runs[0].State != planner.Lost || s.Losses != 1 || s.Failures != 0 {
		t.Errorf("dies: run 0 %s, %d losses, %d failures; want LOST, 1, 0", s.Runs[0].State, s.Losses, s.Failures)
	}
	done := runAsync(r)
	waitFor(t, "dies to run again", func() bool {
		s := r.Snapshot().Processes[2]
		return len(s.Runs) == 2 && s.State == planner.Running
	})
	// An adopted process ends under the new executor's watch.
	syscall.Kill(watched.pid, syscall.SIGKILL)
	waitFor(t, "watched to be lost and run again", func() bool {
		s := r.Snapshot().Processes[3]
		return len(s.Runs) == 2 && s.Runs[0].State == planner.Lost && s.State == planner.Running
	})
	if s := r.Snapshot().Processes[1]; s.State != planner.Running || len(s.Runs) != 1 || !long.running() {
		t.Fatalf("long: %s after %d runs (alive %v); want the same run, RUNNING", s.State, len(s.Runs), long.running())
	}
	if s := r.Snapshot().Processes[0]; len(s.Runs) != 1 {
		t.Errorf("done ran again: %d runs", len(s.Runs))
	}

	// Teardown reaches the adopted process too.
	r.Kill(5 * time.Second)
	if s := await(t, done, 10*time.Second); s != planner.TaskKilled {
		t.Fatalf("task %s", s)
	}
	waitFor(t, "the adopted process to be gone", func() bool { return !long.running() })
	if s := r.Snapshot().Processes[1]; len(s.Runs) != 1 {
		t.Errorf("long ran again during teardown: %d runs", len(s.Runs))
	}
	// The checkpoint, torn line and all, still replays to what happened.
	if p, _ := replayDir(t, dir); p.TaskState() != planner.TaskKilled {
		t.Errorf("replayed checkpoint: %s", p.TaskState())
	}
}

// A task that was over before its executor restarted stays over: the new
// runner reports its terminal state and starts nothing.
func TestRecoveryOfTerminalTask(t *testing.T) {
	dir := t.TempDir()
	task := planner.DefaultTask("once", proc("once", "echo ran >> runs"))
	r, sandbox := newRunnerIn(t, dir, task)
	if s := await(t, runAsync(r), 10*time.Second); s != planner.TaskSuccess {
		t.Fatalf("task %s", s)
	}
	r2, _ := newRunnerIn(t, dir, task)
	if !r2.Recovered() {
		t.Fatal("the new runner did not re-attach to the checkpoint")
	}
	if s := await(t, runAsync(r2), 10*time.Second); s != planner.TaskSuccess {
		t.Fatalf("recovered task %s", s)
	}
	if b, _ := os.ReadFile(filepath.Join(sandbox, "runs")); string(b) != "ran\n" {
		t.Errorf("the process ran again: %q", b)
	}
	if s := r2.Snapshot().Processes[0]; len(s.Runs) != 1 || s.State != planner.Success {
		t.Errorf("once: %s after %d runs", s.State, len(s.Runs))
	}
	ckpt := filepath.Join(dir, "checkpoints", "tasks")
	if _, err := os.Stat(filepath.Join(ckpt, "finished", "task-1")); err != nil {
		t.Errorf("task not under finished: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "active", "task-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("task back under active: %v", err)
	}
}

// A checkpoint that cannot be replayed is an error of its own kind, which
// the executor reports as Thermos does ("Task checkpoint could not be
// read."), rather than a fresh start over the old task's processes.
func TestRecoveryOfUnreadableCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, recoveryTask(), nil)
	d := filepath.Join(cfg.CheckpointRoot, "checkpoints", "task-1")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "header.json"), []byte("{not json"), 0o644)
	if _, err := New(cfg); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("err %v, want ErrCheckpoint", err)
	}
}

// A recorded pid is only taken for the run's process if it is the same
// process: the same start time, or, for a record without one (written
// before pid_start existed), a session leader that started when the run
// was forked.
func TestIdentify(t *testing.T) {
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	forked := time.Now()
	pid, wait, err := testProcs.Start("/bin/sleep", []string{"sleep", "3600"},
		&os.ProcAttr{Files: []*os.File{devnull, devnull, devnull}, Sys: &syscall.SysProcAttr{Setsid: true}})
	if err != nil {
		t.Fatal(err)
	}
	start := startTicks(pid)
	for _, tc := range []struct {
		name   string
		start  uint64
		forked time.Time
		want   bool
	}{
		{"same start time", start, forked, true},
		{"another start time", start + 1, forked, false},
		{"old record, forked then", 0, forked, true},
		{"old record, forked an hour before", 0, forked.Add(-time.Hour), false},
	} {
		if _, got := identify(pid, tc.start, tc.forked); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, got := identify(os.Getpid(), 0, forked); got {
		t.Error("a process that does not lead its session passed for an old record's run")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	<-wait
	if _, got := identify(pid, start, forked); got {
		t.Error("a process that is gone passed")
	}
}
