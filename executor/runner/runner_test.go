package runner

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
)

var testProcs *Procs

func TestMain(m *testing.M) {
	p, err := NewProcs()
	if err != nil {
		panic(err)
	}
	testProcs = p
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		crashHelper(dir)
	}
	os.Exit(m.Run())
}

func proc(name, cmd string, opts ...func(*planner.Process)) planner.Process {
	p := planner.DefaultProcess(name, cmd)
	p.MinDuration = 100 * time.Millisecond
	for _, o := range opts {
		o(&p)
	}
	return p
}

func daemon(p *planner.Process)    { p.Daemon = true }
func ephemeral(p *planner.Process) { p.Ephemeral = true }
func final(p *planner.Process)     { p.Final = true }

func newRunner(t *testing.T, task planner.Task) (*Runner, string) {
	t.Helper()
	return newRunnerIn(t, t.TempDir(), task)
}

// testConfig is the configuration of a task in dir (the run directory).
func testConfig(dir string, task planner.Task, logger *slog.Logger) Config {
	return Config{
		Task: task, Sandbox: filepath.Join(dir, "sandbox"), CheckpointRoot: filepath.Join(dir, "checkpoints"), TaskJSON: []byte(`{}`),
		Bindings: Bindings{TaskID: "task-1", User: "nobody", Hostname: "h", Ports: map[string]int{"http": 8080}},
		Procs:    testProcs, Logger: logger,
	}
}

func newRunnerIn(t *testing.T, dir string, task planner.Task) (*Runner, string) {
	t.Helper()
	cfg := testConfig(dir, task, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, cfg.Sandbox
}

// testWriter sends the runner's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func runAsync(r *Runner) <-chan planner.TaskState {
	out := make(chan planner.TaskState, 1)
	go func() { out <- r.Run(context.Background()) }()
	return out
}

func await(t *testing.T, done <-chan planner.TaskState, within time.Duration) planner.TaskState {
	t.Helper()
	select {
	case s := <-done:
		return s
	case <-time.After(within):
		t.Fatalf("task not terminal within %s", within)
		return 0
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The e2e scenario ephemeral_daemon_with_final (reference §2.4): once main
// exits, the ephemeral daemon is killed and the final process runs.
func TestEphemeralDaemonWithFinal(t *testing.T) {
	task := planner.DefaultTask("ephemeral_daemon_with_final",
		proc("ephemeral_daemon", "sleep 3600", daemon, ephemeral),
		proc("main", "while [ ! -e stop_file ]; do sleep 0.05; done"),
		proc("final", "rm stop_file", final))
	r, sandbox := newRunner(t, task)
	done := runAsync(r)
	waitFor(t, "main to run", func() bool {
		s := r.Snapshot()
		return s.Processes[0].State == planner.Running && s.Processes[1].State == planner.Running
	})
	os.WriteFile(filepath.Join(sandbox, "stop_file"), nil, 0o644)
	if s := await(t, done, 10*time.Second); s != planner.TaskSuccess {
		t.Fatalf("task %s", s)
	}
	if _, err := os.Stat(filepath.Join(sandbox, "stop_file")); !os.IsNotExist(err) {
		t.Fatalf("final process did not remove the stop file: %v", err)
	}
	snap := r.Snapshot()
	want := map[string]planner.ProcessState{"ephemeral_daemon": planner.Killed, "main": planner.Success, "final": planner.Success}
	for _, p := range snap.Processes {
		if p.State != want[p.Name] {
			t.Errorf("%s: %s, want %s", p.Name, p.State, want[p.Name])
		}
	}
	// The checkpoint replays to the same states, as the observer will see them.
	ckpt := filepath.Join(filepath.Dir(sandbox), "checkpoints")
	data, err := os.ReadFile(filepath.Join(ckpt, "checkpoints", "task-1", "runner"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := planner.DecodeRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	var h Header
	hb, _ := os.ReadFile(filepath.Join(ckpt, "checkpoints", "task-1", "header.json"))
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	p, err := planner.Replay(h.Task, h.LaunchTime, recs)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TaskState(); got != planner.TaskSuccess {
		t.Errorf("replayed checkpoint: %s", got)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "tasks", "finished", "task-1")); err != nil {
		t.Errorf("task not moved to finished: %v", err)
	}
}

func TestProfileAndLogs(t *testing.T) {
	task := planner.DefaultTask("profile",
		proc("setup", `echo 'export GREETING=hello' > .thermos_profile; echo setup-out; echo setup-err >&2`),
		proc("use", `echo "$GREETING $HOME $USER {{thermos.ports[http]}}" > seen; pwd >> seen`))
	task.Order = [][]string{{"setup", "use"}}
	r, sandbox := newRunner(t, task)
	if s := await(t, runAsync(r), 10*time.Second); s != planner.TaskSuccess {
		t.Fatalf("task %s", s)
	}
	seen, _ := os.ReadFile(filepath.Join(sandbox, "seen"))
	if want := "hello " + sandbox + " nobody 8080\n" + sandbox + "\n"; string(seen) != want {
		t.Errorf("seen %q, want %q", seen, want)
	}
	for f, want := range map[string]string{"stdout": "setup-out\n", "stderr": "setup-err\n"} {
		b, _ := os.ReadFile(filepath.Join(sandbox, ".logs", "setup", "0", f))
		if string(b) != want {
			t.Errorf("%s: %q", f, b)
		}
	}
	if fi, _ := os.Stat(sandbox); fi.Mode().Perm() != 0o700 {
		t.Errorf("sandbox mode %v", fi.Mode().Perm())
	}
}

// A daemon that double-forked out of its process's tree is an orphan of
// the executor, and still gets SIGTERM when the task is killed.
func TestKillReachesDoubleForkedDaemon(t *testing.T) {
	task := planner.DefaultTask("daemonize",
		proc("run_daemon", `(setsid bash -c 'trap "touch termed; exit 0" TERM; touch started; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &); sleep 3600`))
	r, sandbox := newRunner(t, task)
	done := runAsync(r)
	waitFor(t, "the daemon", func() bool { return fileExists(filepath.Join(sandbox, "started")) })
	r.Kill(5 * time.Second)
	if s := await(t, done, 10*time.Second); s != planner.TaskKilled {
		t.Fatalf("task %s", s)
	}
	waitFor(t, "the daemon's SIGTERM handler", func() bool { return fileExists(filepath.Join(sandbox, "termed")) })
}

// A process that ignores SIGTERM is killed at the finalization deadline.
func TestFinalizationDeadline(t *testing.T) {
	task := planner.DefaultTask("stubborn", proc("stubborn", `trap "" TERM; sleep 3600`))
	r, _ := newRunner(t, task)
	done := runAsync(r)
	waitFor(t, "stubborn to run", func() bool { return r.Snapshot().Processes[0].State == planner.Running })
	start := time.Now()
	r.Kill(500 * time.Millisecond)
	if s := await(t, done, 10*time.Second); s != planner.TaskKilled {
		t.Fatalf("task %s", s)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("killed after %s, before the deadline", el)
	}
}

func TestRetriesThenFails(t *testing.T) {
	p := proc("flaky", "exit 3")
	p.MaxFailures = 3
	r, _ := newRunner(t, planner.DefaultTask("flaky", p))
	if s := await(t, runAsync(r), 10*time.Second); s != planner.TaskFailed {
		t.Fatalf("task %s", s)
	}
	st := r.Snapshot().Processes[0]
	if st.Failures != 3 || len(st.Runs) != 3 || *st.ExitCode != 3 {
		t.Errorf("flaky: %+v", st)
	}
}

func TestUnboundReference(t *testing.T) {
	_, err := New(Config{
		Task:    planner.DefaultTask("t", proc("p", "serve --port {{thermos.ports[admin]}}")),
		Sandbox: t.TempDir(), CheckpointRoot: t.TempDir(), Procs: testProcs,
	})
	if err == nil || !strings.Contains(err.Error(), "process p: unbound reference {{thermos.ports[admin]}}") {
		t.Fatalf("err %v", err)
	}
}

// A run that cannot even start (here: the sandbox is a file, so neither its
// logs nor its working directory can be made) is a failed run, retried as
// any other.
func TestRunThatCannotStartFails(t *testing.T) {
	p := proc("p", "true")
	p.MaxFailures = 2
	r, sandbox := newRunner(t, planner.DefaultTask("t", p))
	os.RemoveAll(sandbox)
	os.WriteFile(sandbox, nil, 0o600)
	if s := await(t, runAsync(r), 10*time.Second); s != planner.TaskFailed {
		t.Fatalf("task %s", s)
	}
	if st := r.Snapshot().Processes[0]; st.Failures != 2 || *st.ExitCode != 127 {
		t.Errorf("process %+v", st)
	}
}
