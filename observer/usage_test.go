package observer

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// fakeProc is a /proc and /sys/fs/cgroup of our making.
type fakeProc struct {
	t            *testing.T
	proc, cgroup string
	btime        int64
}

func newFakeProc(t *testing.T) *fakeProc {
	p := &fakeProc{t: t, proc: t.TempDir(), cgroup: t.TempDir(), btime: t0.Unix() - 1000}
	writeFile(t, filepath.Join(p.proc, "stat"), fmt.Sprintf("cpu  1 2 3 4\nbtime %d\nprocesses 5\n", p.btime))
	return p
}

// process writes /proc/<pid>/stat; started is when it started.
func (p *fakeProc) process(pid, ppid, sid int, utime, stime, threads, rssPages int, started time.Time) {
	ticks := (started.Unix() - p.btime) * clockTicks
	stat := fmt.Sprintf("%d (ba sh) S %d %d %d 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 %d 0 %d 123456 %d 18446744073709551615 1 1 0 0 0 0",
		pid, ppid, pid, sid, utime, stime, threads, ticks, rssPages)
	writeFile(p.t, filepath.Join(p.proc, fmt.Sprint(pid), "stat"), stat)
}

func (p *fakeProc) file(path, data string) { writeFile(p.t, filepath.Join(p.cgroup, path), data) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestParseStat(t *testing.T) {
	b := []byte("42 (a) b) c) R 7 42 40 0 -1 0 0 0 0 0 11 22 33 44 20 0 3 0 500 1000 66 1")
	p, ok := parseStat(b)
	if !ok || p.pid != 42 || p.ppid != 7 || p.sid != 40 || p.userTicks != 44 || p.sysTicks != 66 || p.threads != 3 || p.startTicks != 500 || p.rssPages != 66 {
		t.Fatalf("%+v %v", p, ok)
	}
	if _, ok := parseStat([]byte("42 (short) R 1 2")); ok {
		t.Fatal("parsed a short stat")
	}
}

func TestUsage(t *testing.T) {
	page := int64(os.Getpagesize())
	forked := t0.Add(3 * time.Second) // hello run 1 in the fixture
	tests := []struct {
		name     string
		setup    func(p *fakeProc)
		run      *observerapi.Usage // want of /j/process/<active>/hello; nil: no "used"
		task     observerapi.TaskUsage
		taskRate float64 // the first sample's rate
	}{
		{
			name: "proc tree",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, helloPID, 100, 50, 1, 1000, forked)
				p.process(helloPID+10, helloPID, helloPID, 200, 0, 2, 500, forked.Add(time.Second))
				p.process(helloPID+11, helloPID+10, 5, 0, 0, 1, 10, forked.Add(time.Second)) // its own session, still a descendant
				p.process(helloPID+20, 1, helloPID+20, 999, 999, 9, 9999, forked)            // someone else
			},
			run:  &observerapi.Usage{RAM: 1510 * page, User: 3, System: 0.5, Threads: 4},
			task: observerapi.TaskUsage{Usage: observerapi.Usage{RAM: 1510 * page, User: 3, System: 0.5, Threads: 4}, Disk: 12345, Source: "proc"},
			// 3.5 s of CPU since launch, 10 min ago.
			taskRate: 3.5 / 600,
		},
		{
			name: "cgroup v2",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, helloPID, 100, 50, 1, 1000, forked)
				writeFile(t, filepath.Join(p.proc, fmt.Sprint(helloPID), "cgroup"), "0::/aurorabox/agent-x/container-aaaa\n")
				p.file("aurorabox/agent-x/container-aaaa/cpu.stat", "usage_usec 6000000\nuser_usec 4000000\nsystem_usec 2000000\n")
				p.file("aurorabox/agent-x/container-aaaa/memory.stat", "anon 7340032\nfile 99\nfile_mapped 1000\n")
				p.file("aurorabox/agent-x/container-aaaa/pids.current", "4\n")
			},
			run:      &observerapi.Usage{RAM: 1000 * page, User: 1, System: 0.5, Threads: 1},
			task:     observerapi.TaskUsage{Usage: observerapi.Usage{RAM: 7341032, User: 4, System: 2, Threads: 4}, Disk: 12345, Source: "cgroup"},
			taskRate: 6.0 / 600,
		},
		{
			name: "cgroup v1",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, helloPID, 100, 50, 1, 1000, forked)
				writeFile(t, filepath.Join(p.proc, fmt.Sprint(helloPID), "cgroup"),
					"9:name=systemd:/\n8:pids:/ab/container-aaaa\n4:memory:/ab/container-aaaa\n2:cpu,cpuacct:/ab/container-aaaa\n0::/\n")
				p.file("cpu,cpuacct/ab/container-aaaa/cpuacct.stat", "user 300\nsystem 100\n")
				p.file("cpu,cpuacct/ab/container-aaaa/cpuacct.usage", "4500000000\n")
				p.file("memory/ab/container-aaaa/memory.stat", "cache 5\nrss 3\ntotal_rss 1048576\ntotal_mapped_file 4096\n")
				p.file("pids/ab/container-aaaa/pids.current", "2\n")
			},
			run:      &observerapi.Usage{RAM: 1000 * page, User: 1, System: 0.5, Threads: 1},
			task:     observerapi.TaskUsage{Usage: observerapi.Usage{RAM: 1052672, User: 3, System: 1, Threads: 2}, Disk: 12345, Source: "cgroup"},
			taskRate: 4.5 / 600,
		},
		{
			name: "someone else's cgroup",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, helloPID, 100, 50, 1, 1000, forked)
				writeFile(t, filepath.Join(p.proc, fmt.Sprint(helloPID), "cgroup"), "0::/user.slice/session-1.scope\n")
				p.file("user.slice/session-1.scope/cpu.stat", "usage_usec 99000000\n")
			},
			run:      &observerapi.Usage{RAM: 1000 * page, User: 1, System: 0.5, Threads: 1},
			task:     observerapi.TaskUsage{Usage: observerapi.Usage{RAM: 1000 * page, User: 1, System: 0.5, Threads: 1}, Disk: 12345, Source: "proc"},
			taskRate: 1.5 / 600,
		},
		{
			name: "recycled pid, not a session leader",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, 77, 100, 50, 1, 1000, forked)
			},
			task: observerapi.TaskUsage{Disk: 12345},
		},
		{
			name: "recycled pid, started later",
			setup: func(p *fakeProc) {
				p.process(helloPID, 1, helloPID, 100, 50, 1, 1000, forked.Add(5*time.Minute))
			},
			task: observerapi.TaskUsage{Disk: 12345},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := newFakeProc(t)
			tc.setup(p)
			now := t0.Add(10 * time.Minute)
			o := New(Config{WorkDir: f.workDir, Now: func() time.Time { return now }, ProcRoot: p.proc, CgroupRoot: p.cgroup})
			o.usage.du = func(*os.Root) int64 { return 12345 }
			h := o.Handler()

			var run observerapi.Run
			if err := json.Unmarshal(get(t, h, "/j/process/"+activeID+"/hello").Body.Bytes(), &run); err != nil {
				t.Fatal(err)
			}
			if (run.Used == nil) != (tc.run == nil) {
				t.Fatalf("process usage %+v, want %+v", run.Used, tc.run)
			}
			if tc.run != nil {
				got := *run.Used
				got.CPU = 0
				if got != *tc.run {
					t.Errorf("process usage %+v, want %+v", got, *tc.run)
				}
			}
			task := func() observerapi.TaskUsage {
				var out map[string]observerapi.Task
				if err := json.Unmarshal(get(t, h, "/j/task/"+activeID).Body.Bytes(), &out); err != nil {
					t.Fatal(err)
				}
				return out[activeID].ResourceConsumption
			}
			got := task()
			if !near(got.CPU, tc.taskRate) {
				t.Errorf("first task cpu rate %v, want %v", got.CPU, tc.taskRate)
			}
			got.CPU = 0
			if got != tc.task {
				t.Errorf("task usage %+v, want %+v", got, tc.task)
			}
			if tc.task.Source == "" {
				return
			}
			// Within a second: the same rate. Two seconds and one more
			// CPU second later: half a core.
			now = now.Add(500 * time.Millisecond)
			if again := task(); !near(again.CPU, tc.taskRate) {
				t.Errorf("rate within the window %v, want %v", again.CPU, tc.taskRate)
			}
			now = now.Add(1500 * time.Millisecond)
			switch tc.task.Source {
			case "proc":
				p.process(helloPID, 1, helloPID, 200, 50, 1, 1000, forked)
			case "cgroup":
				if tc.name == "cgroup v2" {
					p.file("aurorabox/agent-x/container-aaaa/cpu.stat", "usage_usec 7000000\nuser_usec 5000000\nsystem_usec 2000000\n")
				} else {
					p.file("cpu,cpuacct/ab/container-aaaa/cpuacct.usage", "5500000000\n")
				}
			}
			if later := task(); !near(later.CPU, 0.5) {
				t.Errorf("rate over 2 s with 1 CPU second: %v, want 0.5", later.CPU)
			}
		})
	}
}

// Finished tasks have no live usage, whatever /proc says.
func TestFinishedTaskUsage(t *testing.T) {
	f := newFixture(t)
	p := newFakeProc(t)
	p.process(999990003, 1, 999990003, 100, 50, 1, 1000, t0.Add(10*time.Second))
	o := New(Config{WorkDir: f.workDir, Now: func() time.Time { return t0.Add(time.Hour) }, ProcRoot: p.proc, CgroupRoot: p.cgroup})
	o.usage.du = func(*os.Root) int64 { return 1 }
	if u := o.usage.taskUsage(o.task(finishedID), time.Minute); u != (observerapi.TaskUsage{Disk: 1}) {
		t.Fatalf("%+v", u)
	}
}

// The disk usage counts allocated blocks, so a sparse file counts little,
// and does not follow symlinks out.
func TestWalkDisk(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a", "b"), string(make([]byte, 64<<10)))
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "big"), string(make([]byte, 1<<20)))
	symlink(t, outside, filepath.Join(dir, "out"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	got := walkDisk(root)
	if got < 64<<10 || got > 1<<20 {
		t.Fatalf("walkDisk = %d, want about 64 KiB plus directories", got)
	}
}
