package observer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/executor/runner"
	"golang.org/x/sys/unix"
)

// The fixture: one agent work dir with an active and a finished task, their
// checkpoints written in the executor's format (runner.Header and
// planner.EncodeRecord lines), sandboxes with logs, and a secret next to the
// work dir that no request may reach.
const (
	activeID   = "www-data-prod-hello-0-aaaa"
	finishedID = "www-data-prod-batch-0-bbbb"
	secret     = "TOPSECRET-do-not-serve"
	// Pids that cannot exist (above any pid_max), so that usage is empty
	// unless a test fakes /proc.
	setupPID = 999990001
	helloPID = 999990002
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	dir     string // temp root: work/ and the secret
	workDir string
	runs    map[string]string // task id → run dir
}

func (f fixture) sandbox(id string) string { return filepath.Join(f.runs[id], "sandbox") }

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// writeTask writes a task's run directory: header, records, config, and
// sandbox files (path → content).
func writeTask(t *testing.T, workDir, id string, active bool, task planner.Task, recs []planner.Record, files map[string]string) string {
	t.Helper()
	runs := filepath.Join(workDir, "slaves", "agent-S0", "frameworks", "fw-0000", "executors", "thermos-"+id, "runs")
	runDir := filepath.Join(runs, "container-"+id[len(id)-4:])
	sandbox := filepath.Join(runDir, "sandbox")
	h := runner.Header{TaskID: id, LaunchTime: t0, Sandbox: sandbox, LogDir: runner.LogDir(sandbox), Hostname: "agent-one",
		User: "www-data", UID: 33, Ports: map[string]int{"http": 31001, "health": 31002}, Task: task}
	hb, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(runDir, "checkpoints", "checkpoints", id)
	writeFile(t, filepath.Join(ckpt, "header.json"), string(hb))
	var stream []byte
	for _, r := range recs {
		b, err := planner.EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
	}
	writeFile(t, filepath.Join(ckpt, "runner"), string(stream))
	state := "finished"
	if active {
		state = "active"
	}
	writeFile(t, filepath.Join(runDir, "checkpoints", "tasks", state, id),
		`{"name": "`+task.Name+`", "role": "www-data", "environment": "prod", "task": {"name": "`+task.Name+`"}}`)
	symlink(t, filepath.Base(runDir), filepath.Join(runs, "latest"))
	for p, data := range files {
		writeFile(t, filepath.Join(sandbox, p), data)
	}
	return runDir
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, workDir: filepath.Join(dir, "work"), runs: map[string]string{}}
	writeFile(t, filepath.Join(dir, "secret"), secret+"\n")
	writeFile(t, filepath.Join(dir, "secretdir", "secret"), secret+"\n")

	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	hello := planner.Task{Name: "hello", MaxFailures: 1, FinalizationWait: 30 * time.Second,
		Processes: []planner.Process{
			{Name: "setup", Cmdline: "echo setting up", MaxFailures: 1},
			{Name: "hello", Cmdline: "while true; do echo hello <world>; sleep 1; done", MaxFailures: 3},
			{Name: "cleanup", Cmdline: "echo bye", MaxFailures: 1, Final: true},
		},
		Order: [][]string{{"setup", "hello"}},
	}
	f.runs[activeID] = writeTask(t, f.workDir, activeID, true, hello, []planner.Record{
		{Time: at(1), Kind: planner.KindForked, Process: "setup", Run: 0, PID: setupPID},
		{Time: at(1), Kind: planner.KindStarted, Process: "setup", Run: 0, PID: setupPID},
		{Time: at(2), Kind: planner.KindExited, Process: "setup", Run: 0, ExitCode: 0},
		{Time: at(2), Kind: planner.KindForked, Process: "hello", Run: 0, PID: helloPID - 1},
		{Time: at(2), Kind: planner.KindStarted, Process: "hello", Run: 0, PID: helloPID - 1},
		{Time: at(3), Kind: planner.KindExited, Process: "hello", Run: 0, ExitCode: 1},
		{Time: at(3), Kind: planner.KindForked, Process: "hello", Run: 1, PID: helloPID},
		{Time: at(3), Kind: planner.KindStarted, Process: "hello", Run: 1, PID: helloPID},
	}, map[string]string{
		".logs/setup/0/stdout": "setting up\n",
		".logs/setup/0/stderr": "",
		".logs/hello/0/stdout": "hello <world>\n",
		".logs/hello/0/stderr": "boom: <script>alert(1)</script>\n",
		".logs/hello/1/stdout": "hello <world>\nhello <world>\n",
		".logs/hello/1/stderr": "",
		"data/notes.txt":       "some notes\n",
		"data/page.html":       "<html><script>alert(1)</script></html>\n",
	})
	sb := f.sandbox(activeID)
	// Symlinks: one inside, and escapes of every kind.
	symlink(t, "data/notes.txt", filepath.Join(sb, "notes-link"))
	symlink(t, "../../../../../../../../secret", filepath.Join(sb, "up-link"))
	symlink(t, filepath.Join(dir, "secret"), filepath.Join(sb, "escapes", "abs-link"))
	symlink(t, filepath.Join(dir, "secretdir"), filepath.Join(sb, "escapes", "dir-link"))
	if err := unix.Mkfifo(filepath.Join(sb, "escapes", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	batch := planner.Task{Name: "batch", MaxFailures: 1, FinalizationWait: 30 * time.Second,
		Processes: []planner.Process{{Name: "main", Cmdline: "echo done", MaxFailures: 1}}}
	f.runs[finishedID] = writeTask(t, f.workDir, finishedID, false, batch, []planner.Record{
		{Time: at(10), Kind: planner.KindForked, Process: "main", Run: 0, PID: 999990003},
		{Time: at(10), Kind: planner.KindStarted, Process: "main", Run: 0, PID: 999990003},
		{Time: at(12), Kind: planner.KindExited, Process: "main", Run: 0, ExitCode: 0},
	}, map[string]string{".logs/main/0/stdout": "done\n", ".logs/main/0/stderr": ""})

	// Fixed times and modes, for the golden listings.
	for _, d := range []string{f.workDir} {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(t0.UnixNano()), unix.NsecToTimeval(t0.UnixNano())})
				return nil
			}
			if fi.IsDir() {
				os.Chmod(p, 0o755)
			} else if fi.Mode().IsRegular() {
				os.Chmod(p, 0o644)
			}
			return os.Chtimes(p, t0, t0)
		})
	}
	// Directories last, since writing into them changed their times.
	filepath.Walk(f.workDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chtimes(p, t0, t0)
		}
		return nil
	})
	return f
}

// newTestObserver observes the fixture with a fixed clock, an empty /proc
// and a fixed disk usage.
func newTestObserver(t *testing.T, f fixture) *Observer {
	t.Helper()
	o := New(Config{WorkDir: f.workDir, Now: func() time.Time { return t0.Add(10 * time.Minute) }, Hostname: "agent-one",
		ProcRoot: t.TempDir(), CgroupRoot: t.TempDir()})
	o.usage.du = func(*os.Root) int64 { return 12345 }
	return o
}
