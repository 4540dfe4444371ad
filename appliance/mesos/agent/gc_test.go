package agent_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// fakeDisk is an injected disk-usage source.
type fakeDisk struct{ permille atomic.Int64 }

func (d *fakeDisk) set(usage float64)    { d.permille.Store(int64(usage * 1000)) }
func (d *fakeDisk) usage(string) float64 { return float64(d.permille.Load()) / 1000 }
func exists(p string) bool               { _, err := os.Lstat(p); return err == nil }

// idleAgent is an agent over workDir that is never run (no master, no
// executors): enough to collect garbage.
func idleAgent(t *testing.T, workDir string, opts ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.Config{ListenAddr: "127.0.0.1:0", WorkDir: workDir}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// gcWorkDir is a work dir whose agent id (meta/slaves/latest) is "S1", with
// runs made by mkRun.
type gcWorkDir struct {
	t    *testing.T
	root string
}

func newGCWorkDir(t *testing.T) *gcWorkDir {
	w := &gcWorkDir{t, t.TempDir()}
	w.claim("latest", "S1")
	return w
}

// claim makes link (meta/slaves/latest or latest-<name>) name agent id.
func (w *gcWorkDir) claim(link, id string) {
	meta := filepath.Join(w.root, "meta", "slaves")
	if err := os.MkdirAll(filepath.Join(meta, id), 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Symlink(id, filepath.Join(meta, link)); err != nil {
		w.t.Fatal(err)
	}
}

// mkRun makes a terminated run of agent ag, framework fw, executor ex with
// its checkpoint dir, points the executor's latest link at it, and dates
// its exit (the run dir's modification time) at exited.
func (w *gcWorkDir) mkRun(ag, fw, ex, run string, exited time.Time) string {
	w.t.Helper()
	rel := filepath.Join(ag, "frameworks", fw, "executors", ex, "runs", run)
	dir := filepath.Join(w.root, "slaves", rel)
	for _, d := range []string{filepath.Join(dir, "sandbox"), filepath.Join(w.root, "meta", "slaves", rel)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			w.t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "stdout"), []byte("out\n"), 0o644)
	os.WriteFile(filepath.Join(w.root, "meta", "slaves", rel, "run.json"), []byte("{}"), 0o600)
	latest := filepath.Join(filepath.Dir(dir), "latest")
	os.Remove(latest)
	if err := os.Symlink(run, latest); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chtimes(dir, exited, exited); err != nil {
		w.t.Fatal(err)
	}
	return dir
}

// TestSandboxGCPolicy: with an injected clock and disk usage, a terminated
// run goes once it is GCDelay × max(0, 1 − headroom − usage) old, not a
// moment before: by age alone on an empty disk, sooner as the disk fills,
// at once past 1 − headroom; a headroom of 0 is none.
func TestSandboxGCPolicy(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const delay = 10 * time.Hour
	for _, c := range []struct {
		name     string
		headroom float64
		usage    float64
		maxAge   time.Duration
	}{
		{"empty disk: age alone", 0.1, 0, 9 * time.Hour},
		{"half full: sooner", 0.1, 0.5, 4 * time.Hour},
		{"more headroom: sooner still", 0.3, 0.5, 2 * time.Hour},
		{"past 1 - headroom: at once", 0.1, 0.95, 0},
		{"no headroom", 0, 0.95, 30 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newGCWorkDir(t)
			disk := &fakeDisk{}
			disk.set(c.usage)
			clock := newFakeClock(t0)
			young := w.mkRun("S1", "F1", "young", "r1", t0.Add(-c.maxAge+time.Second))
			due := w.mkRun("S1", "F1", "due", "r1", t0.Add(-c.maxAge))
			a := idleAgent(t, w.root, func(cfg *agent.Config) {
				cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskUsage, cfg.Now = delay, c.headroom, disk.usage, clock.Now
			})
			a.CollectGarbage()
			if c.maxAge > 0 && !exists(young) {
				t.Errorf("a run %s old was removed; the allowed age is %s", c.maxAge-time.Second, c.maxAge)
			}
			if exists(due) {
				t.Errorf("a run %s old was kept; the allowed age is %s", c.maxAge, c.maxAge)
			}
		})
	}
}

// TestSandboxGCRemovesWhatGoesWithARun: the latest link goes with the run
// it names (not with an older one), the executor directory with its last
// run, the framework directory when it is left empty, and the run's
// checkpoints; another live agent's runs in a shared work dir are never
// touched, an earlier incarnation's are; what a cut-short removal left in
// the trash goes.
func TestSandboxGCRemovesWhatGoesWithARun(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w := newGCWorkDir(t)
	w.claim("latest-2", "S2") // another agent (up --agents 2) shares the work dir
	disk := &fakeDisk{}
	clock := newFakeClock(t0)
	old := w.mkRun("S1", "F1", "E1", "r1", t0.Add(-20*time.Hour))
	newer := w.mkRun("S1", "F1", "E1", "r2", t0.Add(-time.Hour))
	other := w.mkRun("S2", "F1", "E1", "r1", t0.Add(-100*time.Hour))
	stale := w.mkRun("S0", "F1", "E1", "r1", t0.Add(-20*time.Hour)) // no agent claims S0
	leftover := filepath.Join(w.root, "meta", "gc", "S1", "run-cut-short", "run", "sandbox")
	os.MkdirAll(leftover, 0o700)
	a := idleAgent(t, w.root, func(cfg *agent.Config) {
		cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskUsage, cfg.Now = 10*time.Hour, 0.1, disk.usage, clock.Now
	})
	exDir := filepath.Dir(filepath.Dir(old))
	fwDir := filepath.Dir(filepath.Dir(exDir))
	latest := filepath.Join(exDir, "runs", "latest")
	metaOf := func(run string) string {
		rel, _ := filepath.Rel(filepath.Join(w.root, "slaves"), run)
		return filepath.Join(w.root, "meta", "slaves", rel)
	}

	a.CollectGarbage() // the old run is due (9h on an empty disk), the newer one is not
	if exists(old) || exists(metaOf(old)) {
		t.Error("the old run or its checkpoints outlived it")
	}
	if target, err := os.Readlink(latest); err != nil || target != "r2" || !exists(newer) {
		t.Errorf("the newer run %v or its latest link (%q, %v) went with the old run", exists(newer), target, err)
	}
	if exists(stale) || !exists(other) {
		t.Errorf("earlier incarnation's run kept %v; other agent's run kept %v; want false, true", exists(stale), exists(other))
	}
	if exists(leftover) {
		t.Error("the trash was not emptied")
	}

	clock.add(8 * time.Hour) // the newer run is 9h old: its executor's last
	disk.set(0.99)           // a full disk: S2's run stays all the same
	a.CollectGarbage()
	for name, p := range map[string]string{"run": newer, "latest link": latest, "executor dir": exDir, "framework dir": fwDir, "checkpoints": metaOf(newer)} {
		if exists(p) {
			t.Errorf("%s %s outlived the executor's last run", name, p)
		}
	}
	if !exists(other) {
		t.Error("another live agent's run was removed")
	}
	if entries, _ := os.ReadDir(filepath.Join(w.root, "meta", "gc", "S1")); len(entries) != 0 {
		t.Errorf("trash left behind: %v", entries)
	}
}

// TestSandboxGC: with real executors, the injected clock and disk usage:
// a terminated executor's run is dated by its exit on the agent's clock; a
// fuller disk brings its removal forward; a running executor's run is
// never removed, even on a full disk and far in the future; the completed
// executor stays in /state (as in Mesos) while /files no longer finds its
// directory; and an agent restarted over the work dir keeps the ages.
func TestSandboxGC(t *testing.T) {
	t0 := time.Now().Truncate(time.Second)
	clock := newFakeClock(t0)
	disk := &fakeDisk{}
	gc := func(cfg *agent.Config) {
		// The disk is watched every hour of real time: the test runs the
		// rounds (CollectGarbage).
		cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskWatchInterval = 10*time.Hour, 0.1, time.Hour
		cfg.DiskUsage, cfg.Now = disk.usage, clock.Now
	}
	c := startCluster(t, gc)
	finish := func(id string) {
		t.Helper()
		for st := c.sched.updateFor(id); st.GetState() != mesos.TASK_FINISHED; st = c.sched.updateFor(id) {
			if s := st.GetState(); s != mesos.TASK_STARTING && s != mesos.TASK_RUNNING {
				t.Fatalf("%s: %s", id, st.GetState())
			}
		}
		// The update comes before the executor exits: wait for the exit.
		for c.executorLive(id) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	c.sched.launch(shellTask("brief", "true"), shellTask("lasting", "sleep 100"))
	c.awaitRunning("lasting")
	finish("brief") // exits at t0
	clock.add(5 * time.Hour)
	c.sched.launch(shellTask("brief2", "true"))
	finish("brief2") // exits at t0+5h
	brief, brief2, lasting := c.sandbox("brief"), c.sandbox("brief2"), c.sandbox("lasting")

	c.agent.CollectGarbage() // empty disk: 9h allowed; brief is 5h old
	if !exists(brief) || !exists(brief2) {
		t.Fatal("a run was removed before its time on an empty disk")
	}
	disk.set(0.5) // 4h allowed
	c.agent.CollectGarbage()
	if exists(brief) || !exists(brief2) {
		t.Fatalf("half-full disk: brief (5h old) kept %v, brief2 (0h) kept %v; want false, true", exists(brief), exists(brief2))
	}
	if code, body := c.get("/files/browse", url.Values{"path": {brief}}); code != http.StatusNotFound {
		t.Errorf("/files/browse of a removed run: %d %s, want 404", code, body)
	}
	if c.sandbox("brief") != brief {
		t.Error("the completed executor left /state")
	}

	clock.add(1000 * time.Hour)
	disk.set(1)
	c.agent.CollectGarbage()
	if !exists(lasting) {
		t.Fatal("a running executor's sandbox was removed")
	}
	if exists(brief2) {
		t.Fatal("brief2 outlived a full disk")
	}

	// An agent restarted over the work dir dates a run by its exit, not by
	// the restart.
	clock.set(t0.Add(5 * time.Hour))
	c.sched.launch(shellTask("brief3", "true"))
	finish("brief3") // exits at t0+5h
	brief3 := c.sandbox("brief3")
	c.agent.Shutdown()
	disk.set(0)
	clock.set(t0.Add(14*time.Hour - time.Second))
	again := idleAgent(t, c.workDir, gc)
	again.CollectGarbage()
	if !exists(brief3) {
		t.Fatal("after a restart, a run 9h - 1s old was removed")
	}
	clock.set(t0.Add(14 * time.Hour))
	again.CollectGarbage()
	if exists(brief3) {
		t.Fatal("after a restart, a run 9h old was kept")
	}
}

// executorLive reports whether /state lists executor id as running.
func (c *cluster) executorLive(id string) bool {
	for _, fw := range c.state()["frameworks"].([]any) {
		for _, ex := range fw.(map[string]any)["executors"].([]any) {
			if ex.(map[string]any)["id"] == id {
				return true
			}
		}
	}
	return false
}

// TestSandboxGCRunsEveryDiskWatchInterval: a running agent checks the disk
// on its own, every DiskWatchInterval.
func TestSandboxGCRunsEveryDiskWatchInterval(t *testing.T) {
	c := startMasterAndAgent(t, func(cfg *agent.Config) {
		cfg.GCDelay, cfg.DiskWatchInterval = 10*time.Hour, 10*time.Millisecond
		cfg.DiskUsage = func(string) float64 { return 0 }
	})
	deadline := time.Now().Add(10 * time.Second)
	id := ""
	for id == "" { // registered: the agent has its id
		if time.Now().After(deadline) {
			t.Fatal("the agent did not register")
		}
		id, _ = c.state()["id"].(string)
	}
	w := &gcWorkDir{t, c.workDir}
	// Made now, dated back past 9h (the allowed age on an empty disk).
	run := w.mkRun(id, "F1", "E1", "r1", time.Now().Add(-20*time.Hour))
	for exists(run) {
		if time.Now().After(deadline) {
			t.Fatal("a terminated run past its age was not removed by the agent's disk watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
