package isolation

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
)

// The test binary doubles as the workload: re-executed with helperEnv set, TestMain runs a
// helper instead of the tests. Every helper first waits for a line on stdin, so the test can
// Add it to its container before it does anything (the start-up race the package documents).
const helperEnv = "AURORABOX_ISOLATION_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

func runHelper(name string) int {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "helper: no go signal:", err)
		return 3
	}
	arg := func(k string) int {
		n, _ := strconv.Atoi(os.Getenv(helperEnv + "_" + k))
		return n
	}
	switch name {
	case "alloc": // allocate and touch MB megabytes, report, then wait for stdin to close
		var keep [][]byte
		for range arg("MB") {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Printf("allocated %d MB\n", len(keep))
		io.Copy(io.Discard, in)
		runtime.KeepAlive(keep)
		return 0
	case "spin": // burn CPU on one thread for MS milliseconds
		end := time.Now().Add(time.Duration(arg("MS")) * time.Millisecond)
		n := 0
		for time.Now().Before(end) {
			n++
		}
		fmt.Println(n > 0)
		return 0
	case "new": // report the mode New picks for this process
		i, err := New(os.Getenv(helperEnv+"_ROOT"), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s\t%s\n", i.Mode(), i.Reason())
		return 0
	case "fork": // fork up to N sleeps as fast as possible, counting EAGAIN failures
		var pids []int
		eagain, other := 0, 0
		for range arg("N") {
			pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "1"}, &syscall.ProcAttr{})
			switch {
			case err == nil:
				pids = append(pids, pid)
			case errors.Is(err, syscall.EAGAIN):
				eagain++
			default:
				other++
			}
		}
		fmt.Printf("started=%d eagain=%d other=%d\n", len(pids), eagain, other)
		for _, pid := range pids {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "helper: unknown", name)
	return 2
}

// child is a started helper or shell, gated on stdin.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout lines, when readLines was used
	stderr bytes.Buffer
}

func startHelper(t *testing.T, name string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + name, "GOMAXPROCS=1"}, env...)...)
	return start(t, cmd)
}

func start(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
	}()
	t.Cleanup(func() {
		// Wait closes stdout even while orphaned grandchildren still hold it open.
		cmd.Process.Kill()
		c.stdin.Close()
		cmd.Wait()
		<-done
	})
	return c
}

// goAhead releases a child waiting on stdin.
func (c *child) goAhead(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// line returns the child's next stdout line, or "" when it exits first or after timeout.
func (c *child) line(timeout time.Duration) string {
	select {
	case l := <-c.lines:
		return l
	case <-time.After(timeout):
		return ""
	}
}

// wait waits for the child (its stdout must have been drained or closed) and returns how it
// ended.
func (c *child) wait(t *testing.T, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for range c.lines {
		}
		errc <- c.cmd.Wait()
	}()
	select {
	case err := <-errc:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("wait: %v", err)
		}
		return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	case <-time.After(timeout):
		t.Fatalf("child %v still running after %v", c.cmd.Args, timeout)
		return 0
	}
}

// skipUnlessRequired skips, or fails when AURORABOX_REQUIRE_CGROUPS=1 (as
// CI sets it), so that the isolation tests cannot pass by not running.
func skipUnlessRequired(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("AURORABOX_REQUIRE_CGROUPS") == "1" {
		t.Fatal(why + " (AURORABOX_REQUIRE_CGROUPS=1)")
	}
	t.Skip(why)
}

// newIsolator returns an Isolator with a root of its own, cleaned up when the test ends, or
// skips the test when this host cannot isolate.
func newIsolator(t *testing.T) *Isolator {
	t.Helper()
	if os.Geteuid() != 0 {
		skipUnlessRequired(t, "skipping: cgroup isolation tests need root")
	}
	if os.Getenv(EnvMode) == string(ModeNone) {
		t.Skipf("skipping: %s=none", EnvMode)
	}
	i, err := New(testRoot(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if i.Mode() == ModeNone {
		skipUnlessRequired(t, "skipping: no cgroup isolation on this host: "+i.Reason())
	}
	cleanupIsolator(t, i)
	return i
}

func cleanupIsolator(t *testing.T, i *Isolator) {
	t.Cleanup(func() {
		if err := i.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		for _, d := range cgroupDirs(i, "") {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("Cleanup left %s behind (%v)", d, err)
			}
		}
	})
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func testRoot(t *testing.T) string {
	return fmt.Sprintf("aurorabox-test/%s-%d-%x", nonName.ReplaceAllString(t.Name(), "_"), os.Getpid(), rand.Uint32())
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// cgroupDirs lists the directories that hold container id's cgroup ("" for the root).
func cgroupDirs(i *Isolator, id string) []string {
	switch b := i.be.(type) {
	case *v1Backend:
		var dirs []string
		for _, s := range b.subs {
			dirs = append(dirs, s.(pather).Path(b.path(id)))
		}
		return dirs
	case *v2Backend:
		return []string{b.dir(id)}
	}
	return nil
}

func create(t *testing.T, i *Isolator, id string, l Limits) *Container {
	t.Helper()
	c, err := i.Create(id, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return c
}

func add(t *testing.T, c *Container, ch *child) {
	t.Helper()
	if err := c.Add(ch.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
}

func procs(t *testing.T, c *Container) []int {
	t.Helper()
	pids, err := c.h.procs()
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func usage(t *testing.T, c *Container) Usage {
	t.Helper()
	u, err := c.Usage()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMemoryLimitOOM(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	const limit = 64 << 20
	for _, tc := range []struct {
		name    string
		allocMB int
		wantOOM bool
	}{
		{"over-limit", 200, true},
		{"under-limit", 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, i, tc.name, Limits{MemBytes: limit})
			ch := startHelper(t, "alloc", fmt.Sprintf("%s_MB=%d", helperEnv, tc.allocMB))
			add(t, c, ch)
			ch.goAhead(t)
			got := ch.line(10 * time.Second)
			var u Usage
			if got != "" {
				u = usage(t, c) // measured while the allocation is alive
				ch.stdin.Close()
			}
			ws := ch.wait(t, 10*time.Second)
			oom, err := c.OOMKilled()
			if err != nil {
				t.Fatal(err)
			}
			after := usage(t, c)
			t.Logf("allocating %d MB under a %d MB limit: output %q, exit %v, OOMKilled %v, usage while alive %+v, after %+v",
				tc.allocMB, limit>>20, got, describe(ws), oom, u, after)
			if after.MemLimitBytes != limit {
				t.Errorf("MemLimitBytes = %d, want %d", after.MemLimitBytes, limit)
			}
			if tc.wantOOM {
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("child ended with %v, want killed by SIGKILL", describe(ws))
				}
				if got != "" {
					t.Errorf("child finished allocating (%q) despite the limit", got)
				}
				if !oom || after.OOMKills < 1 {
					t.Errorf("OOMKilled = %v, OOMKills = %d, want true and >= 1", oom, after.OOMKills)
				}
				return
			}
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("child ended with %v (stderr %q), want exit 0", describe(ws), ch.stderr.String())
			}
			if oom || after.OOMKills != 0 {
				t.Errorf("OOMKilled = %v, OOMKills = %d, want false and 0", oom, after.OOMKills)
			}
			if min := int64(tc.allocMB) << 20; u.MemRSSBytes < min || u.MemUsageBytes < min || u.MemUsageBytes > limit {
				t.Errorf("usage while holding %d MB: rss %d, usage %d; want rss and usage >= %d and usage <= the limit",
					tc.allocMB, u.MemRSSBytes, u.MemUsageBytes, min)
			}
		})
	}
}

func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "signal " + ws.Signal().String()
	case ws.Exited():
		return "exit " + strconv.Itoa(ws.ExitStatus())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	const window = time.Second
	for _, tc := range []struct {
		name     string
		cpus     float64
		min, max float64 // CPU-seconds per wall second
	}{
		// Only the ceiling is the quota's doing; the floor just shows the
		// loop ran and usage is read (a loaded CI machine may give it little).
		{"0.2cpus", 0.2, 0.01, 0.35},
		{"1cpu", 1, 0.01, 1.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, i, tc.name, Limits{CPUs: tc.cpus})
			ch := startHelper(t, "spin", helperEnv+"_MS=5000")
			add(t, c, ch)
			ch.goAhead(t)
			time.Sleep(100 * time.Millisecond) // let it reach the busy loop
			u0, t0 := usage(t, c), time.Now()
			time.Sleep(window)
			u1, t1 := usage(t, c), time.Now()
			if err := c.KillAll(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			used := (u1.CPUUserSecs + u1.CPUSystemSecs) - (u0.CPUUserSecs + u0.CPUSystemSecs)
			rate := used / t1.Sub(t0).Seconds()
			t.Logf("limit %.2f CPUs: used %.3f CPU-s in %v = %.3f CPUs (user %.3f s, system %.3f s in total)",
				tc.cpus, used, t1.Sub(t0).Round(time.Millisecond), rate, u1.CPUUserSecs, u1.CPUSystemSecs)
			if rate < tc.min || rate > tc.max {
				t.Errorf("busy loop limited to %.2f CPUs used %.3f CPUs, want within [%.2f, %.2f]", tc.cpus, rate, tc.min, tc.max)
			}
		})
	}
}

func TestPidsLimit(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	const limit = 20
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *child
		check func(t *testing.T, ch *child, out []string)
	}{
		{
			name: "go-forkexec",
			start: func(t *testing.T) *child {
				return startHelper(t, "fork", helperEnv+"_N=60")
			},
			check: func(t *testing.T, ch *child, out []string) {
				var started, eagain, other int
				if len(out) == 0 {
					t.Fatalf("fork helper printed nothing (stderr %q)", ch.stderr.String())
				}
				if _, err := fmt.Sscanf(out[0], "started=%d eagain=%d other=%d", &started, &eagain, &other); err != nil {
					t.Fatalf("fork helper output %q: %v", out[0], err)
				}
				t.Logf("fork helper: started %d sleeps, %d EAGAIN, %d other errors", started, eagain, other)
				if started < 1 || started >= limit || eagain < 1 || other != 0 {
					t.Errorf("60 forks under pids.max=%d: started %d, EAGAIN %d, other errors %d; want 1..%d started and some EAGAIN",
						limit, started, eagain, other, limit-1)
				}
			},
		},
		{
			name: "sh-loop",
			start: func(t *testing.T) *child {
				// Bounded: 40 background sleeps of one second each.
				return start(t, exec.Command("/bin/sh", "-c",
					`read go; i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done; wait`))
			},
			check: func(t *testing.T, ch *child, out []string) {
				t.Logf("shell stderr: %q", ch.stderr.String())
				// dash gives up with "Cannot fork"; bash retries with "fork: retry: Resource
				// temporarily unavailable" (EAGAIN).
				if !strings.Contains(strings.ToLower(ch.stderr.String()), "fork") {
					t.Errorf("shell reported no fork failure")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := create(t, i, tc.name, Limits{Pids: limit})
			ch := tc.start(t)
			add(t, c, ch)
			ch.goAhead(t)
			done := make(chan []string)
			go func() {
				var out []string
				for l := range ch.lines {
					out = append(out, l)
				}
				done <- out
			}()
			maxProcs, maxTasks := 0, int64(0)
			var out []string
		poll:
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
				select {
				case out = <-done:
					break poll
				default:
				}
				if p, err := c.h.procs(); err == nil {
					maxProcs = max(maxProcs, len(p))
				}
				if u, err := c.Usage(); err == nil {
					maxTasks = max(maxTasks, u.Pids)
				}
				time.Sleep(2 * time.Millisecond)
			}
			ws := ch.wait(t, 5*time.Second)
			events, _ := readKV(pidsEventsFile(i, tc.name))
			t.Logf("pids.max=%d: at most %d processes and %d tasks seen in the cgroup; pids.events max=%d; child %v",
				limit, maxProcs, maxTasks, events["max"], describe(ws))
			if maxProcs > limit || maxTasks > limit {
				t.Errorf("cgroup held %d processes, %d tasks; want <= %d", maxProcs, maxTasks, limit)
			}
			if maxProcs < 2 {
				t.Errorf("saw at most %d processes: the fork bomb did not run", maxProcs)
			}
			if events != nil && events["max"] < 1 {
				t.Errorf("pids.events max = %d, want fork failures counted", events["max"])
			}
			tc.check(t, ch, out)
		})
	}
}

// pidsEventsFile is the pids.events file of container id ("" when there is none).
func pidsEventsFile(i *Isolator, id string) string {
	for _, d := range cgroupDirs(i, id) {
		if f := filepath.Join(d, "pids.events"); fileExists(f) {
			return f
		}
	}
	return ""
}

func fileExists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

func TestKillAllProcessTree(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			id := "tree-" + strconv.Itoa(int(sig))
			c := create(t, i, id, Limits{})
			testKillTree(t, c, sig)
		})
	}
}

// testKillTree starts sh → (sh → setsid sleep, sleep), sleep in c and checks that
// KillAll(sig) ends all of them, including the grandchild in its own session.
func testKillTree(t *testing.T, c *Container, sig syscall.Signal) {
	ch := start(t, exec.Command("/bin/sh", "-c",
		`read go; /bin/sh -c 'setsid sleep 300 & sleep 300 & wait' & sleep 300 & wait`))
	add(t, c, ch)
	ch.goAhead(t)
	var pids []int
	sessions := map[int]bool{}
	for deadline := time.Now().Add(5 * time.Second); len(pids) < 5 || len(sessions) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process tree did not start: processes %v in sessions %v", pids, sessions)
		}
		pids = procs(t, c)
		clear(sessions)
		for _, pid := range pids {
			sessions[procStat(pid).session] = true
		}
	}
	if err := c.KillAll(sig); err != nil {
		t.Fatal(err)
	}
	ws := ch.wait(t, 5*time.Second)
	if !ws.Signaled() || ws.Signal() != sig {
		t.Errorf("top process ended with %v, want %v", describe(ws), sig)
	}
	start := time.Now()
	for left := procs(t, c); len(left) > 0; left = procs(t, c) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("processes %v still in the cgroup 5s after KillAll(%v)", left, sig)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pid := range pids {
		if st := procStat(pid); st.state != "" && st.state != "Z" && st.state != "X" {
			t.Errorf("pid %d (session %d) still alive after KillAll(%v): state %s", pid, st.session, sig, st.state)
		}
	}
	t.Logf("KillAll(%v) ended %d processes in %d sessions; cgroup empty after %v",
		sig, len(pids), len(sessions), time.Since(start).Round(time.Millisecond))
}

type stat struct {
	state   string // "" when the process is gone
	session int
}

func procStat(pid int) stat {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}
	}
	// pid (comm) state ppid pgrp session ...
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 4 {
		return stat{}
	}
	s, _ := strconv.Atoi(f[3])
	return stat{state: f[0], session: s}
}

func TestLoadAndCleanup(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	a, err := i.Create("a", Limits{CPUs: 0.5, MemBytes: 100 << 20, Pids: 50})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := i.Create("b", Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := i.Create("a", Limits{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing container: %v, want fs.ErrExist", err)
	}
	if _, err := i.Load("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing container: %v, want fs.ErrNotExist", err)
	}

	// A fresh Isolator, as after an agent restart, finds the same cgroups.
	i2, err := New(i.root, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	la, err := i2.Load("a")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := i2.Load("b")
	if err != nil {
		t.Fatal(err)
	}
	sleeper := start(t, exec.Command("sleep", "300"))
	add(t, la, sleeper)
	if got := procs(t, a); len(got) != 1 || got[0] != sleeper.cmd.Process.Pid {
		t.Errorf("process added through the loaded container: created container has %v, want [%d]", got, sleeper.cmd.Process.Pid)
	}
	if u := usage(t, la); u.MemLimitBytes != 100<<20 || u.Pids != 1 {
		t.Errorf("loaded container usage %+v, want the created limit %d and 1 task", u, 100<<20)
	}
	other := start(t, exec.Command("sleep", "300"))
	add(t, lb, other)

	ids, err := i.be.list()
	if err != nil || strings.Join(ids, ",") != "a,b" {
		t.Errorf("containers under root: %v, %v; want [a b]", ids, err)
	}
	// Cleanup kills what still runs and removes every cgroup under root, and root.
	if err := i2.Cleanup(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []*child{sleeper, other} {
		if ws := ch.wait(t, 5*time.Second); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("process in a cleaned-up container ended with %v, want SIGKILL", describe(ws))
		}
	}
	for _, id := range []string{"a", "b", ""} {
		for _, d := range cgroupDirs(i, id) {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("after Cleanup %s: %v, want it removed", d, err)
			}
		}
	}
	if _, err := i.Load("a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Cleanup: %v, want fs.ErrNotExist", err)
	}
	// Destroying a container whose cgroup is already gone is fine.
	if err := a.Destroy(); err != nil {
		t.Errorf("Destroy after Cleanup: %v", err)
	}
}

func TestLimitsWritten(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	create(t, i, "c", Limits{CPUs: 0.5, MemBytes: 100 << 20, Pids: 50})
	want := map[string]string{}
	switch b := i.be.(type) {
	case *v1Backend:
		p := b.path("c")
		for _, f := range []struct {
			sub        cgroup1.Name
			file, want string
		}{
			{cgroup1.Cpu, "cpu.shares", "512"},
			{cgroup1.Cpu, "cpu.cfs_period_us", "100000"},
			{cgroup1.Cpu, "cpu.cfs_quota_us", "50000"},
			{cgroup1.Memory, "memory.limit_in_bytes", "104857600"},
			{cgroup1.Memory, "memory.memsw.limit_in_bytes", "104857600"},
			{cgroup1.Pids, "pids.max", "50"},
		} {
			if d := b.dir(f.sub, p); d != "" && (b.memsw || !strings.Contains(f.file, "memsw")) {
				want[filepath.Join(d, f.file)] = f.want
			}
		}
	case *v2Backend:
		d := b.dir("c")
		for _, f := range []struct{ ctrl, file, want string }{
			{"cpu", "cpu.weight", "20"},
			{"cpu", "cpu.max", "50000 100000"},
			{"memory", "memory.max", "104857600"},
			{"memory", "memory.swap.max", "0"},
			{"pids", "pids.max", "50"},
		} {
			if b.has(f.ctrl) && (b.swap || f.file != "memory.swap.max") {
				want[filepath.Join(d, f.file)] = f.want
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("no limit files to check")
	}
	for f, w := range want {
		b, err := os.ReadFile(f)
		if got := strings.TrimSpace(string(b)); err != nil || got != w {
			t.Errorf("%s = %q, %v; want %q", f, got, err, w)
		}
	}
}

// TestSharesOnly: without the CFS quota, cpus only set the weight.
func TestSharesOnly(t *testing.T) {
	t.Parallel()
	i := newIsolator(t)
	create(t, i, "s", Limits{CPUs: 0.5, SharesOnly: true})
	var file, want string
	switch b := i.be.(type) {
	case *v1Backend:
		file, want = filepath.Join(b.dir(cgroup1.Cpu, b.path("s")), "cpu.cfs_quota_us"), "-1"
		if got, _ := os.ReadFile(filepath.Join(b.dir(cgroup1.Cpu, b.path("s")), "cpu.shares")); strings.TrimSpace(string(got)) != "512" {
			t.Errorf("cpu.shares = %q", got)
		}
	case *v2Backend:
		if !b.has("cpu") {
			t.Skip("no cpu controller")
		}
		file, want = filepath.Join(b.dir("s"), "cpu.max"), "max 100000"
	}
	if got, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(got)) != want {
		t.Errorf("%s = %q, %v; want %q", file, got, err, want)
	}
}

// TestFallbackUnprivileged runs New as an unprivileged user, who cannot create cgroups: it
// must pick ModeNone and say why instead of failing.
func TestFallbackUnprivileged(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to switch to an unprivileged user")
	}
	// The test binary must be executable by that user.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "isolation-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(dir, "isolation.test")
	if b, err := os.ReadFile(exe); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(copyExe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	root := testRoot(t)
	cmd := exec.Command(copyExe)
	cmd.Env = append(os.Environ(), helperEnv+"=new", helperEnv+"_ROOT="+root, EnvMode+"=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	ch := start(t, cmd)
	ch.goAhead(t)
	out := ch.line(10 * time.Second)
	if ws := ch.wait(t, 10*time.Second); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("helper ended with %v: %s", describe(ws), ch.stderr.String())
	}
	mode, reason, _ := strings.Cut(out, "\t")
	t.Logf("as uid 65534: mode %q, reason %q", mode, reason)
	if Mode(mode) != ModeNone || reason == "" {
		t.Errorf("unprivileged New: mode %q, reason %q; want none with a reason", mode, reason)
	}
}

func TestNoneMode(t *testing.T) {
	t.Setenv(EnvMode, "none")
	i, err := New("aurorabox-test/none", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if i.Mode() != ModeNone || !strings.Contains(i.Reason(), EnvMode) {
		t.Fatalf("Mode %q, Reason %q; want none because of %s", i.Mode(), i.Reason(), EnvMode)
	}
	c, err := i.Create("task-1", Limits{CPUs: 0.1, MemBytes: 1 << 20, Pids: 1})
	if err != nil {
		t.Fatal(err)
	}
	ch := start(t, exec.Command("sleep", "300"))
	if err := c.Add(ch.cmd.Process.Pid); err != nil {
		t.Errorf("Add: %v", err)
	}
	if u, err := c.Usage(); err != nil || u != (Usage{}) {
		t.Errorf("Usage = %+v, %v; want zero", u, err)
	}
	if oom, err := c.OOMKilled(); oom || err != nil {
		t.Errorf("OOMKilled = %v, %v; want false", oom, err)
	}
	if fd, ok := c.CgroupFD(); ok {
		t.Errorf("CgroupFD = %d, true; want false", fd)
	}
	if err := c.KillAll(syscall.SIGKILL); err != nil {
		t.Errorf("KillAll: %v", err)
	}
	if err := c.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
	if err := ch.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the process is gone after no-op KillAll/Destroy: %v", err)
	}
	if _, err := i.Load("task-1"); err != nil {
		t.Errorf("Load: %v", err)
	}
	if err := i.Cleanup(); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Setenv(EnvMode, "none")
	for _, root := range []string{"", "/", "../x", "a/../../b"} {
		if _, err := New(root, nil); err == nil {
			t.Errorf("New(%q) succeeded, want an error", root)
		}
	}
	i, err := New("/aurorabox-test//x/", nil)
	if err != nil || i.root != "aurorabox-test/x" {
		t.Fatalf("New: root %q, %v; want aurorabox-test/x", i.root, err)
	}
	for _, id := range []string{"", ".", "..", "a/b", "a\x00"} {
		if _, err := i.Create(id, Limits{}); err == nil {
			t.Errorf("Create(%q) succeeded, want an error", id)
		}
		if _, err := i.Load(id); err == nil {
			t.Errorf("Load(%q) succeeded, want an error", id)
		}
	}
	for _, l := range []Limits{{CPUs: -1}, {MemBytes: -1}, {Pids: -1}} {
		if _, err := i.Create("x", l); err == nil {
			t.Errorf("Create with %+v succeeded, want an error", l)
		}
	}
	t.Setenv(EnvMode, "bogus")
	if _, err := New("aurorabox-test/x", nil); err == nil {
		t.Errorf("New with %s=bogus succeeded, want an error", EnvMode)
	}
}

func TestConversions(t *testing.T) {
	for _, tc := range []struct {
		cpus   float64
		shares uint64
		quota  int64
		weight uint64
	}{
		{0.001, 2, 1000, 1},
		{0.2, 205, 20000, 8},
		{1, 1024, 100000, 39},
		{2.5, 2560, 250000, 98},
	} {
		if s, q, w := cpuShares(tc.cpus), cfsQuota(tc.cpus), cpuWeight(cpuShares(tc.cpus)); s != tc.shares || q != tc.quota || w != tc.weight {
			t.Errorf("%v CPUs: shares %d, quota %d, weight %d; want %d, %d, %d", tc.cpus, s, q, w, tc.shares, tc.quota, tc.weight)
		}
	}
	for _, tc := range []struct {
		release string
		want    bool
	}{{"5.6.19", false}, {"5.7.0", true}, {"6.18.44-fc-v782", true}, {"4.19.0-amd64", false}, {"5.10+deb", true}, {"x", false}} {
		if got := kernelAtLeast(tc.release, 5, 7); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 7) = %v", tc.release, got)
		}
	}
}

// TestV2Unified runs the cgroup v2 backend on whatever unified hierarchy this host has: the
// real one on a v2 host, or /sys/fs/cgroup/unified on a hybrid v1 host, which has no cpu,
// memory or pids controller but has cgroup.procs, cgroup.kill, cgroup.freeze and
// CLONE_INTO_CGROUP, so the v2 code paths that do not enforce limits get tested on v1 hosts
// too.
func TestV2Unified(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipping: cgroup isolation tests need root")
	}
	mount := unifiedMountpoint
	switch cgroups.Mode() {
	case cgroups.Unified:
	case cgroups.Hybrid:
		mount = filepath.Join(unifiedMountpoint, "unified")
	default:
		t.Skip("skipping: no cgroup v2 hierarchy on this host")
	}
	root := testRoot(t)
	be, err := newV2(root, mount, testLogger(t))
	if err != nil {
		t.Skipf("skipping: cannot use the cgroup v2 hierarchy at %s: %v", mount, err)
	}
	i := &Isolator{mode: ModeV2, root: root, log: testLogger(t), be: be}
	cleanupIsolator(t, i)
	t.Logf("v2 hierarchy at %s, controllers %v, swap accounting %v", mount, be.ctrls, be.swap)

	t.Run("clone-into-cgroup", func(t *testing.T) {
		c := create(t, i, "fd", Limits{CPUs: 0.5, MemBytes: 64 << 20, Pids: 10})
		fd, ok := c.CgroupFD()
		if !ok {
			t.Skip("skipping: kernel has no CLONE_INTO_CGROUP")
		}
		if fd2, _ := c.CgroupFD(); fd2 != fd {
			t.Errorf("CgroupFD returned %d then %d, want the same descriptor", fd, fd2)
		}
		cmd := exec.Command("sleep", "300")
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		ch := start(t, cmd)
		pid := ch.cmd.Process.Pid
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Fatal(err)
		}
		if want := "0::" + be.path("fd") + "\n"; !strings.Contains(string(b), want) {
			t.Errorf("/proc/%d/cgroup = %q, want it to contain %q without any Add", pid, b, want)
		}
		if got := procs(t, c); len(got) != 1 || got[0] != pid {
			t.Errorf("procs = %v, want [%d]", got, pid)
		}
		if u := usage(t, c); u.Pids != 1 {
			t.Errorf("usage %+v, want 1 task", u)
		}
		if oom, err := c.OOMKilled(); oom || err != nil {
			t.Errorf("OOMKilled = %v, %v; want false", oom, err)
		}
	})
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run("kill-tree-"+sig.String(), func(t *testing.T) {
			c := create(t, i, "tree-"+strconv.Itoa(int(sig)), Limits{})
			testKillTree(t, c, sig)
		})
	}
	t.Run("load", func(t *testing.T) {
		create(t, i, "l", Limits{})
		if _, err := i.Load("l"); err != nil {
			t.Errorf("Load: %v", err)
		}
		if _, err := i.Create("l", Limits{}); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create of an existing container: %v, want fs.ErrExist", err)
		}
		if _, err := i.Load("nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a missing container: %v, want fs.ErrNotExist", err)
		}
	})
}
