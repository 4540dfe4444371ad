package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/commandexec"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/zktest"
	"github.com/aurorabox/aurorabox/executor"
	"github.com/aurorabox/aurorabox/executor/assigned"
	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/executor/runner"
	"github.com/go-zookeeper/zk"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// The test binary doubles as the executor and as the tasks' HTTP server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "executor", "executor-setuid":
			// "executor" runs every task as the test's user (the test
			// binary sits in a private temp dir that role users cannot
			// reach); "executor-setuid" runs it as its role's user.
			cfg := executor.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), NoSetuid: os.Args[1] == "executor"}
			if len(os.Args) > 2 {
				cfg.AnnouncerEnsemble = os.Args[2]
			}
			if err := executor.Run(context.Background(), cfg); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case agent.CommandExecutorRole:
			commandexec.Run(context.Background(), slog.Default())
			os.Exit(0)
		case "httpserver":
			httpServer(os.Args[2], len(os.Args) > 3 && os.Args[3] == "exit-on-quit")
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// httpServer is a task process: it answers /health with "ok" and writes
// what happens to it (health checks, lifecycle calls, SIGTERM) to the file
// "events" in its working directory, with times. It ignores the lifecycle
// calls, so that a test sees the whole escalation, unless exitOnQuit: then
// /quitquitquit ends it (and its task) once it has answered.
func httpServer(port string, exitOnQuit bool) {
	f, _ := os.OpenFile("events", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	var mu sync.Mutex
	logEvent := func(ev string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%d %s\n", time.Now().UnixNano(), ev)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		logEvent("SIGTERM")
		os.Exit(0)
	}()
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		ev := "health"
		if q := r.URL.RawQuery; q != "" {
			ev += "?" + q // tells this task's checks from strays (the port range is shared)
		}
		logEvent(ev)
		fmt.Fprint(w, "OK\n")
	})
	for _, p := range []string{"/quitquitquit", "/abortabortabort"} {
		http.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			logEvent(r.Method + " " + r.URL.Path)
			if exitOnQuit && r.URL.Path == "/quitquitquit" {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				os.Exit(0)
			}
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		logEvent("listen: " + err.Error())
		os.Exit(1)
	}
	logEvent("listening")
	http.Serve(ln, nil)
}

type event struct {
	at   time.Time
	what string
}

func readEvents(t *testing.T, sandbox string) []event {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(sandbox, "events"))
	var out []event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ns, what, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(ns, 10, 64)
		out = append(out, event{time.Unix(0, n), what})
	}
	return out
}

// waitEvent waits until the task in sandbox has written the event what.
func waitEvent(t *testing.T, sandbox, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, e := range readEvents(t, sandbox) {
			if e.what == what {
				return
			}
		}
	}
	t.Fatalf("the task did not write %q: %v", what, readEvents(t, sandbox))
}

func ptr[T any](v T) *T { return &v }

// job builds a job with fast health checks unless changed.
func job(name string, procs ...schema.Process) schema.Job {
	return schema.Job{
		Name: name, Role: "nobody-role", Environment: "test", Cluster: "devcluster",
		Task: schema.Task{Name: name, Processes: procs, Resources: &schema.Resources{CPU: 0.1, RAM: 64 << 20, Disk: 64 << 20}},
		HealthCheckConfig: schema.HealthCheckConfig{
			// Grace for the servers to start listening: 10 attempts.
			InitialIntervalSecs: ptr(2.0), IntervalSecs: ptr(0.2), TimeoutSecs: ptr(1.0),
		},
	}
}

func process(name, cmd string) schema.Process { return schema.Process{Name: name, Cmdline: cmd} }

// thermosTask makes the TaskInfo the scheduler would send: the assigned
// task in data, with the named ports taken from the offer.
func thermosTask(c *mesostest.Cluster, id string, j schema.Job, args []string, portNames ...string) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		ports := mesostest.Ports(o)
		at := api.AssignedTask{TaskID: id, SlaveID: o.AgentID.Value, SlaveHost: o.Hostname, InstanceID: 0,
			AssignedPorts: map[string]int{}, Task: api.TaskConfig{Job: api.JobKey{Role: j.Role, Environment: j.Environment, Name: j.Name}}}
		var rs []mesos.Resource
		rs = append(rs, resources.NewCPUs(0.1).Resource, resources.NewMemory(64).Resource)
		var ranges []mesos.Value_Range
		for i, n := range portNames {
			at.AssignedPorts[n] = int(ports[i])
			ranges = append(ranges, mesos.Value_Range{Begin: ports[i], End: ports[i]})
		}
		if len(ranges) > 0 {
			rs = append(rs, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: ranges}})
		}
		data, err := assigned.Encode(at, j)
		if err != nil {
			c.T.Fatal(err)
		}
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID, Resources: rs, Data: data,
			Executor: executorInfo(c, "thermos-"+id, args),
		}
	}
}

// executorInfo runs the executor from this test binary, or from the
// aurorabox binary named by AURORABOX_BIN (as `make bench` does, to measure
// the real thing).
func executorInfo(c *mesostest.Cluster, id string, args []string) *mesos.ExecutorInfo {
	if bin := os.Getenv("AURORABOX_BIN"); bin != "" {
		flags := []string{"--nosetuid"}
		if len(args) > 0 {
			flags = append(flags, "--announcer-ensemble", args[0])
		}
		return &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: id},
			Command: &mesos.CommandInfo{Value: &bin, Arguments: append([]string{bin, "executor"}, flags...), Shell: new(bool)}}
	}
	return c.Executor(id, append([]string{"executor"}, args...)...)
}

// sandbox is the task sandbox of a task's executor.
func sandbox(c *mesostest.Cluster, id string) string {
	m, _ := filepath.Glob(filepath.Join(c.WorkDir, "slaves", "*", "frameworks", "*", "executors", "thermos-"+id, "runs", "latest", "sandbox"))
	if len(m) != 1 {
		c.T.Fatalf("sandbox of %s: %v", id, m)
	}
	return m[0]
}

func expect(t *testing.T, c *mesostest.Cluster, id string, want mesos.TaskState, within time.Duration) mesos.TaskStatus {
	t.Helper()
	st := c.Update(id, within)
	if st.GetState() != want {
		t.Fatalf("%s: %s (%q), want %s", id, st.GetState(), st.GetMessage(), want)
	}
	return st
}

// checkEnd checks a terminal update's message and Mesos reason (nil: none).
func checkEnd(t *testing.T, st mesos.TaskStatus, msg string, reason *mesos.TaskStatus_Reason) {
	t.Helper()
	if st.GetMessage() != msg {
		t.Errorf("%s %s: message %q, want %q", st.TaskID.Value, st.GetState(), st.GetMessage(), msg)
	}
	switch {
	case reason == nil && st.Reason != nil:
		t.Errorf("%s %s: reason %s, want none", st.TaskID.Value, st.GetState(), st.GetReason())
	case reason != nil && (st.Reason == nil || *st.Reason != *reason):
		got := "none"
		if st.Reason != nil {
			got = st.GetReason().String()
		}
		t.Errorf("%s %s: reason %s, want %s", st.TaskID.Value, st.GetState(), got, *reason)
	}
}

// timestamp is when the executor sent an update.
func timestamp(st mesos.TaskStatus) time.Time {
	return time.Unix(0, int64(st.GetTimestamp()*1e9))
}

func self() string { p, _ := os.Executable(); return p }

// TestRunningBeforeHealthChecks checks from the task's side Aurora 0.11's
// order: TASK_RUNNING is sent once the processes are started, before any
// health check, and the first check comes initial_interval_secs after it.
// The server stamps each check it answers, the executor stamps its update
// (both on this host's clock).
func TestRunningBeforeHealthChecks(t *testing.T) {
	c := mesostest.Start(t, freePort(t))
	j := job("hello", process("server", self()+" httpserver {{thermos.ports[health]}}"))
	j.Lifecycle = &schema.LifecycleConfig{} // no HTTP lifecycle: the kill goes straight to SIGTERM
	// Other tests on this host may use the same ports: this task's checks
	// carry their own query.
	j.HealthCheckConfig.HealthChecker.HTTP = &schema.HTTPHealthChecker{Endpoint: ptr("/health?from=ungated")}
	initial := time.Duration(*j.HealthCheckConfig.InitialIntervalSecs * float64(time.Second))
	c.Launch(thermosTask(c, "ungated", j, nil, "health"))
	expect(t, c, "ungated", mesos.TASK_STARTING, 20*time.Second)
	running := timestamp(expect(t, c, "ungated", mesos.TASK_RUNNING, 20*time.Second))
	box := sandbox(c, "ungated")
	var first time.Time
	deadline := time.Now().Add(30 * time.Second)
	for first.IsZero() && time.Now().Before(deadline) {
		for _, e := range readEvents(t, box) {
			if e.what == "health?from=ungated" {
				first = e.at
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if first.IsZero() {
		t.Fatalf("no health check was made (task events %v)", readEvents(t, box))
	}
	if first.Before(running.Add(initial)) {
		t.Fatalf("first health check at %v, TASK_RUNNING at %v: want the check initial_interval_secs (%v) after RUNNING", first, running, initial)
	}
	t.Logf("first health check %v after TASK_RUNNING", first.Sub(running).Round(time.Millisecond))
	c.Kill("ungated")
	checkEnd(t, expect(t, c, "ungated", mesos.TASK_KILLED, 30*time.Second), "Instructed to kill task.", nil)
}

// freePort offers one port the kernel just gave out instead of the shared
// 31000-31100, which other tests on this host may be using.
func freePort(t *testing.T) func(*agent.Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	res, err := agent.ParseResources(fmt.Sprintf("cpus:4;mem:4096;disk:4096;ports:[%d-%d]", port, port))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *agent.Config) { c.Resources = res }
}

func TestBadShellHealthCheckFailsTask(t *testing.T) {
	c := mesostest.Start(t)
	j := job("badcheck", process("sleeper", "sleep 600"))
	j.HealthCheckConfig.HealthChecker = schema.HealthCheckerConfig{Shell: &schema.ShellHealthChecker{ShellCommand: "echo nope; exit 3"}}
	j.HealthCheckConfig.MaxConsecutiveFailures = ptr(1)
	c.Launch(thermosTask(c, "badcheck", j, nil))
	expect(t, c, "badcheck", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "badcheck", mesos.TASK_RUNNING, 20*time.Second)
	checkEnd(t, expect(t, c, "badcheck", mesos.TASK_FAILED, 30*time.Second),
		"Failed health check! Command 'echo nope; exit 3' returned non-zero exit status 3 with output 'nope'",
		mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum())
}

// TestFailingChecksFailRunningTask: a RUNNING task whose checks fail more
// than max_consecutive_failures times in a row fails with the last check's
// reason, counting from the first check, as in 0.11 (later Aurora forgave
// the checks of the initial interval). The check appends a line to
// "checks" in the sandbox on each run and succeeds only on run 2; with
// max_consecutive_failures 1 the runs go F S F F: the success resets the
// count and run 4 ends the task.
func TestFailingChecksFailRunningTask(t *testing.T) {
	c := mesostest.Start(t)
	j := job("turnsbad", process("sleeper", "sleep 600"))
	j.HealthCheckConfig.HealthChecker = schema.HealthCheckerConfig{Shell: &schema.ShellHealthChecker{
		ShellCommand: "echo >> checks; n=$(wc -l < checks); [ $n -eq 2 ] || { echo run $n; exit 1; }"}}
	j.HealthCheckConfig.InitialIntervalSecs = ptr(0.5)
	j.HealthCheckConfig.MaxConsecutiveFailures = ptr(1)
	c.Launch(thermosTask(c, "turnsbad", j, nil))
	expect(t, c, "turnsbad", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "turnsbad", mesos.TASK_RUNNING, 20*time.Second)
	checkEnd(t, expect(t, c, "turnsbad", mesos.TASK_FAILED, 30*time.Second),
		"Failed health check! Command '"+j.HealthCheckConfig.HealthChecker.Shell.ShellCommand+"' returned non-zero exit status 1 with output 'run 4'",
		mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED.Enum())
	b, _ := os.ReadFile(filepath.Join(sandbox(c, "turnsbad"), "checks"))
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Errorf("%d checks were made, want 4 (F S F F)", n)
	}
}

// TestTeardownSequence watches a kill from the task's side: POST
// /quitquitquit, 5 s, POST /abortabortabort, 5 s, then SIGTERM (§6.3).
func TestTeardownSequence(t *testing.T) {
	c := mesostest.Start(t, freePort(t))
	j := job("teardown", process("server", self()+" httpserver {{thermos.ports[health]}}"))
	c.Launch(thermosTask(c, "teardown", j, nil, "health"))
	expect(t, c, "teardown", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "teardown", mesos.TASK_RUNNING, 20*time.Second)
	sb := sandbox(c, "teardown")
	waitEvent(t, sb, "listening") // RUNNING comes once the process is started, not once it serves
	killed := time.Now()
	c.Kill("teardown")
	checkEnd(t, expect(t, c, "teardown", mesos.TASK_KILLED, 30*time.Second), "Instructed to kill task.", nil)
	var seq []event
	for _, e := range readEvents(t, sb) {
		if e.what != "health" && e.what != "listening" {
			seq = append(seq, e)
		}
	}
	want := []string{"POST /quitquitquit", "POST /abortabortabort", "SIGTERM"}
	if len(seq) != 3 {
		t.Fatalf("teardown events %v, want %v", seq, want)
	}
	for i, e := range seq {
		if e.what != want[i] {
			t.Fatalf("teardown events %v, want %v", seq, want)
		}
	}
	gap1, gap2 := seq[1].at.Sub(seq[0].at), seq[2].at.Sub(seq[1].at)
	t.Logf("quitquitquit %s after the kill, abortabortabort %s later, SIGTERM %s later",
		seq[0].at.Sub(killed).Round(time.Millisecond), gap1.Round(time.Millisecond), gap2.Round(time.Millisecond))
	for _, g := range []time.Duration{gap1, gap2} {
		if g < 4900*time.Millisecond || g > 7*time.Second {
			t.Errorf("lifecycle wait %s, want 5s", g)
		}
	}
}

// TestTeardownStopsEarly: a task that exits on /quitquitquit ends the
// teardown there. The evidence: after the task's server is gone, the test
// listens on its port until TASK_KILLED arrives, and gets no
// /abortabortabort (had the executor waited out the 5 s, it would have
// come before TASK_KILLED); the task got no SIGTERM; and the runner's
// checkpoint shows the task ending on its own, with no kill record.
func TestTeardownStopsEarly(t *testing.T) {
	c := mesostest.Start(t, freePort(t))
	j := job("quitter", process("server", self()+" httpserver {{thermos.ports[health]}} exit-on-quit"))
	c.Launch(thermosTask(c, "quitter", j, nil, "health"))
	expect(t, c, "quitter", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "quitter", mesos.TASK_RUNNING, 20*time.Second)
	sb := sandbox(c, "quitter")
	waitEvent(t, sb, "listening")
	ckpt := filepath.Join(filepath.Dir(sb), "checkpoints", "checkpoints", "quitter")
	var h runner.Header
	if b, err := os.ReadFile(filepath.Join(ckpt, "header.json")); err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("checkpoint header: %v", err)
	}
	port := h.Ports["health"]

	var mu sync.Mutex
	var seen []string
	bound := false
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				mu.Lock()
				bound = true
				mu.Unlock()
				go func() { <-stop; ln.Close() }()
				http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen = append(seen, r.Method+" "+r.URL.Path)
					mu.Unlock()
				}))
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	c.Kill("quitter")
	checkEnd(t, expect(t, c, "quitter", mesos.TASK_KILLED, 30*time.Second), "Instructed to kill task.", nil)
	mu.Lock()
	t.Logf("the test took over the port before TASK_KILLED: %v; requests it got: %v", bound, seen)
	for _, r := range seen {
		if strings.Contains(r, "abortabortabort") {
			t.Errorf("the executor went on to %s after the task had exited", r)
		}
	}
	mu.Unlock()
	var got []string
	for _, e := range readEvents(t, sb) {
		if e.what != "health" && e.what != "listening" {
			got = append(got, e.what)
		}
	}
	if len(got) != 1 || got[0] != "POST /quitquitquit" {
		t.Errorf("task saw %v, want only POST /quitquitquit", got)
	}
	data, err := os.ReadFile(filepath.Join(ckpt, "runner"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := planner.DecodeRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Replay(h.Task, h.LaunchTime, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == planner.KindKill || r.Kind == planner.KindLose {
			t.Errorf("the runner was told to %s: %s", r.Kind, r)
		}
	}
	if p.TaskState() != planner.TaskSuccess {
		t.Errorf("runner ended %s, want SUCCESS (on its own)", p.TaskState())
	}
}

func TestKillReachesDoubleForkedDaemon(t *testing.T) {
	c := mesostest.Start(t)
	j := job("daemonize", process("run_daemon",
		`(setsid bash -c 'trap "touch termed; exit 0" TERM; touch started; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &); sleep 3600`))
	c.Launch(thermosTask(c, "daemonize", j, nil))
	expect(t, c, "daemonize", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "daemonize", mesos.TASK_RUNNING, 20*time.Second)
	sb := sandbox(c, "daemonize")
	waitFile(t, filepath.Join(sb, "started"))
	k := time.Now()
	c.Kill("daemonize")
	expect(t, c, "daemonize", mesos.TASK_KILLED, 30*time.Second)
	t.Logf("killed in %s", time.Since(k))
	waitFile(t, filepath.Join(sb, "termed"))
	t.Logf("termed at %s", time.Since(k))
}

func TestThermosProfile(t *testing.T) {
	c := mesostest.Start(t)
	j := job("profile",
		process("setup", `echo 'export GREETING=hello-from-profile' > .thermos_profile`),
		process("use", `echo "$GREETING" > seen`))
	j.Task.Constraints = []schema.Constraint{{Order: []string{"setup", "use"}}}
	c.Launch(thermosTask(c, "profile", j, nil))
	expect(t, c, "profile", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "profile", mesos.TASK_RUNNING, 20*time.Second)
	checkEnd(t, expect(t, c, "profile", mesos.TASK_FINISHED, 30*time.Second), "Task finished.", nil)
	b, _ := os.ReadFile(filepath.Join(sandbox(c, "profile"), "seen"))
	if strings.TrimSpace(string(b)) != "hello-from-profile" {
		t.Fatalf("later process saw %q", b)
	}
}

// TestRunsAsRoleUser: with an existing role user, processes run as that
// user in a 0700 sandbox it owns.
func TestRunsAsRoleUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	c := mesostest.Start(t)
	// The test's temp dirs are 0700; an agent's work dir is not.
	for d := c.WorkDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	j := job("asrole", process("who", `id -un > whoami; touch made-by-role`))
	j.Role = "nobody"
	c.Launch(setuid(thermosTask(c, "asrole", j, nil)))
	expect(t, c, "asrole", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "asrole", mesos.TASK_RUNNING, 20*time.Second)
	expect(t, c, "asrole", mesos.TASK_FINISHED, 30*time.Second)
	sb := sandbox(c, "asrole")
	if b, _ := os.ReadFile(filepath.Join(sb, "whoami")); strings.TrimSpace(string(b)) != "nobody" {
		t.Fatalf("process ran as %q", b)
	}
	fi, err := os.Stat(sb)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o700 || strconv.Itoa(int(st.Uid)) != nobody.Uid {
		t.Fatalf("sandbox %v owned by %d", fi.Mode().Perm(), st.Uid)
	}
}

func TestBadTasks(t *testing.T) {
	c := mesostest.Start(t)
	unbound := job("unbound", process("p", "serve --port {{thermos.ports[admin]}}"))
	c.Launch(thermosTask(c, "unbound", unbound, nil),
		func(o mesos.Offer) mesos.TaskInfo {
			return mesos.TaskInfo{Name: "garbage", TaskID: mesos.TaskID{Value: "garbage"}, AgentID: o.AgentID, Data: []byte("{not json"),
				Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
				Executor:  c.Executor("thermos-garbage", "executor")}
		})
	for id, want := range map[string]string{
		"unbound": "Task is invalid: process p: unbound reference {{thermos.ports[admin]}}",
		"garbage": "Could not deserialize task.",
	} {
		expect(t, c, id, mesos.TASK_STARTING, 20*time.Second)
		checkEnd(t, expect(t, c, id, mesos.TASK_FAILED, 20*time.Second), want, mesos.REASON_TASK_INVALID.Enum())
	}
}

func TestAnnouncer(t *testing.T) {
	zkAddr := zktest.Start(t)
	c := mesostest.Start(t)
	j := job("announced", process("server", self()+" httpserver {{thermos.ports[health]}}"))
	j.Announce = &schema.Announcer{}
	j.Lifecycle = &schema.LifecycleConfig{}
	c.Launch(thermosTask(c, "announced", j, []string{zkAddr}, "health", "http"))
	expect(t, c, "announced", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "announced", mesos.TASK_RUNNING, 20*time.Second)

	conn, _, err := zk.Connect([]string{zkAddr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const path = "/aurora/nobody-role/test/announced"
	member := func() (string, map[string]any) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			kids, _, err := conn.Children(path)
			if err == nil && len(kids) == 1 {
				data, _, err := conn.Get(path + "/" + kids[0])
				if err == nil {
					var m map[string]any
					if err := json.Unmarshal(data, &m); err != nil {
						t.Fatalf("member data %q: %v", data, err)
					}
					return kids[0], m
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no single member under %s", path)
		return "", nil
	}
	name, m := member()
	if !strings.HasPrefix(name, "member_") || m["status"] != "ALIVE" || m["shard"] != 0.0 {
		t.Fatalf("member %s: %v", name, m)
	}
	if ep := m["serviceEndpoint"].(map[string]any); ep["port"] == 0.0 || ep["host"] == "" {
		t.Fatalf("serviceEndpoint %v", ep)
	}
	if add := m["additionalEndpoints"].(map[string]any); add["health"] == nil || add["http"] == nil {
		t.Fatalf("additionalEndpoints %v", add)
	}
	// Someone deletes it: it is back within 10 s.
	deleted := time.Now()
	if err := conn.Delete(path+"/"+name, -1); err != nil {
		t.Fatal(err)
	}
	again, _ := member()
	t.Logf("member re-created as %s %s after its deletion", again, time.Since(deleted).Round(time.Millisecond))
	if again == name {
		t.Fatalf("member %s not re-created", name)
	}
	c.Kill("announced")
	expect(t, c, "announced", mesos.TASK_KILLED, 30*time.Second)
	if kids, _, err := conn.Children(path); err != nil || len(kids) != 0 {
		t.Fatalf("members after the kill: %v %v", kids, err)
	}
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memKB reads a process's VmRSS, RssAnon and Pss, in KiB.
func memKB(pid int) (rss, anon, pss float64) {
	read := func(file, key string) float64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		return 0
	}
	return read("status", "VmRSS:"), read("status", "RssAnon:"), read("smaps_rollup", "Pss:")
}

// executorPID finds the executor process of a task.
func executorPID(id string) int {
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, e := range entries {
		env, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "MESOS_EXECUTOR_ID=thermos-"+id {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
				return pid
			}
		}
	}
	return 0
}

// BenchmarkExecutorOverhead measures the per-task memory cost of the
// executor while a task (sleep) runs under it, with a shell health check
// and the runner active; Thermos costs about 50 MB per task. Each iteration
// runs 4 tasks at once, as a host does, and reports per executor: RSS, the
// private anonymous part (its own heap and stacks), and PSS, which charges
// each executor its share of the binary's pages (shared with the other
// executors, and in the appliance with every component: one binary).
// Set AURORABOX_BIN to measure the real binary rather than the test's.
func BenchmarkExecutorOverhead(b *testing.B) {
	const perIteration = 4
	c := mesostest.Start(b)
	var rss, anon, pss []float64
	for i := 0; i < b.N; i++ {
		var ids []string
		var tasks []func(mesos.Offer) mesos.TaskInfo
		for k := 0; k < perIteration; k++ {
			id := fmt.Sprintf("overhead-%d-%d", i, k)
			j := job(id, process("sleeper", "sleep 600"))
			j.HealthCheckConfig.HealthChecker = schema.HealthCheckerConfig{Shell: &schema.ShellHealthChecker{ShellCommand: "true"}}
			ids, tasks = append(ids, id), append(tasks, thermosTask(c, id, j, nil))
		}
		c.Launch(tasks...)
		for _, id := range ids {
			for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
				if st := c.Update(id, 30*time.Second); st.GetState() != want {
					b.Fatalf("%s: %s %s: %s", id, st.GetState(), st.GetReason(), st.GetMessage())
				}
			}
		}
		time.Sleep(2 * time.Second) // several health checks and a GC cycle
		for _, id := range ids {
			r, a, p := memKB(executorPID(id))
			if r == 0 {
				b.Fatal("executor process not found")
			}
			rss, anon, pss = append(rss, r), append(anon, a), append(pss, p)
			c.Kill(id)
		}
		for _, id := range ids {
			if st := c.Update(id, 30*time.Second); st.GetState() != mesos.TASK_KILLED {
				b.Fatalf("%s: %s", id, st.GetState())
			}
		}
	}
	b.ReportMetric(median(rss), "executor-RSS-KiB")
	b.ReportMetric(median(anon), "executor-anon-KiB")
	b.ReportMetric(median(pss), "executor-PSS-KiB")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func TestFailingProcessFailsTask(t *testing.T) {
	c := mesostest.Start(t)
	c.Launch(thermosTask(c, "failing", job("failing", process("main", "exit 1")), nil))
	expect(t, c, "failing", mesos.TASK_STARTING, 20*time.Second)
	st := c.Update("failing", 20*time.Second)
	if st.GetState() == mesos.TASK_RUNNING {
		st = c.Update("failing", 20*time.Second)
	}
	if st.GetState() != mesos.TASK_FAILED {
		t.Fatalf("failing: %s %q", st.GetState(), st.GetMessage())
	}
	checkEnd(t, st, "Task failed.", nil)
}

// TestPortmapAliases: {{thermos.ports[x]}} sees the announcer's portmap
// aliases (of an assigned port, or a literal), as Aurora's executor hands
// its runner the resolved ports; a cycle in the portmap fails the task.
func TestPortmapAliases(t *testing.T) {
	c := mesostest.Start(t)
	j := job("aliases", process("echo", `echo {{thermos.ports[http]}} {{thermos.ports[alias]}} {{thermos.ports[static]}} > ports`))
	j.Announce = &schema.Announcer{Portmap: map[string]string{"alias": "http", "static": "8888"}}
	cyclic := job("cyclic", process("p", "true"))
	cyclic.Announce = &schema.Announcer{Portmap: map[string]string{"a": "b", "b": "a"}}
	var port uint64
	c.Launch(func(o mesos.Offer) mesos.TaskInfo {
		port = mesostest.Ports(o)[0]
		return thermosTask(c, "aliases", j, nil, "http")(o)
	}, thermosTask(c, "cyclic", cyclic, nil))
	expect(t, c, "aliases", mesos.TASK_STARTING, 20*time.Second)
	expect(t, c, "aliases", mesos.TASK_RUNNING, 20*time.Second)
	expect(t, c, "aliases", mesos.TASK_FINISHED, 30*time.Second)
	b, _ := os.ReadFile(filepath.Join(sandbox(c, "aliases"), "ports"))
	if want := fmt.Sprintf("%d %d 8888", port, port); strings.TrimSpace(string(b)) != want {
		t.Fatalf("ports seen %q, want %q", b, want)
	}
	expect(t, c, "cyclic", mesos.TASK_STARTING, 20*time.Second)
	st := expect(t, c, "cyclic", mesos.TASK_FAILED, 20*time.Second)
	if !strings.Contains(st.GetMessage(), "cycle") {
		t.Fatalf("cyclic portmap: %q", st.GetMessage())
	}
}

// setuid makes a task's executor run it as its role's user, as the
// appliance's executor (running as root) does.
func setuid(task func(mesos.Offer) mesos.TaskInfo) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		info := task(o)
		info.Executor.Command.Arguments[1] = "executor-setuid"
		return info
	}
}

// TestIdentityFromJobKey: the executor config (the client's free-form
// Thermos job) cannot claim another job's identity. A config that names
// role root, or another job, for a task whose job key is nobody/test/...
// fails as invalid, and a custom zk_path needs the executor's opt-in, so a
// task can neither run as another role nor announce in another job's
// ServerSet.
func TestIdentityFromJobKey(t *testing.T) {
	c := mesostest.Start(t)
	key := func(j schema.Job, role, env, name string) func(mesos.Offer) mesos.TaskInfo {
		id := j.Name
		return func(o mesos.Offer) mesos.TaskInfo {
			info := thermosTask(c, id, j, nil)(o)
			var at api.AssignedTask
			if err := json.Unmarshal(info.Data, &at); err != nil {
				t.Fatal(err)
			}
			at.Task.Job = api.JobKey{Role: role, Environment: env, Name: name}
			info.Data, _ = json.Marshal(at)
			return info
		}
	}
	asRoot := job("asroot", process("p", "id -u > uid; sleep 600"))
	asRoot.Role = "root"
	foreign := job("foreign", process("p", "sleep 600"))
	foreign.Announce = &schema.Announcer{}
	otherUser := job("otheruser", process("p", "sleep 600"))
	otherUser.Task.User = "root"
	zkPath := job("zkpath", process("p", "sleep 600"))
	zkPath.Role = "nobody"
	zkPath.Announce = &schema.Announcer{ZKPath: "/aurora/www-data/prod/frontend"}
	dotdot := job("dotdot", process("p", "sleep 600"))
	dotdot.Role = ""
	c.Launch(
		key(asRoot, "nobody", "test", "asroot"),
		key(foreign, "nobody-role", "test", "frontend"),
		key(otherUser, "nobody-role", "test", "otheruser"),
		key(zkPath, "nobody", "test", "zkpath"),
		key(dotdot, "..", "test", "dotdot"),
	)
	for id, want := range map[string]string{
		"asroot":    `Task is invalid: the executor config's role "root" does not match the task's job key nobody/test/asroot`,
		"foreign":   `Task is invalid: the executor config's name "foreign" does not match the task's job key nobody-role/test/frontend`,
		"otheruser": `Task is invalid: the executor config's task user "root" does not match the task's job key nobody-role/test/otheruser`,
		"zkpath":    `Task is invalid: the announcer's zk_path "/aurora/www-data/prod/frontend" needs an executor started with --announcer-allow-custom-serverset-path`,
		"dotdot":    `Task is invalid: the task's job key "../test/dotdot" has an invalid role ".."`,
	} {
		expect(t, c, id, mesos.TASK_STARTING, 20*time.Second)
		checkEnd(t, expect(t, c, id, mesos.TASK_FAILED, 20*time.Second), want, mesos.REASON_TASK_INVALID.Enum())
	}
}

// TestRoleUserMustExist: a task whose role has no user fails its sandbox
// set-up, naming the user, rather than run as the executor's user (root).
func TestRoleUserMustExist(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only an executor running as root switches to the role's user")
	}
	c := mesostest.Start(t)
	j := job("nouser", process("p", "id -u > uid; sleep 600"))
	j.Role = "aurorabox-no-such-user"
	c.Launch(setuid(thermosTask(c, "nouser", j, nil)))
	expect(t, c, "nouser", mesos.TASK_STARTING, 20*time.Second)
	checkEnd(t, expect(t, c, "nouser", mesos.TASK_FAILED, 20*time.Second),
		"Failed to initialize sandbox: user aurorabox-no-such-user does not exist", mesos.REASON_EXECUTOR_TERMINATED.Enum())
}

// TestUnreachableSandboxFails: a role user that cannot reach its sandbox
// (the agent's work dir under a 0700 directory) fails the task, naming the
// user and the directory in the way, rather than run it as root.
func TestUnreachableSandboxFails(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only an executor running as root switches to the role's user")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	c := mesostest.Start(t)
	// The agent keeps its own work dir passable; a private directory above
	// it (a 0700 home) is what stops the role user.
	private := filepath.Dir(c.WorkDir)
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	j := job("private", process("p", "id -u > uid; sleep 600"))
	j.Role = "nobody"
	c.Launch(setuid(thermosTask(c, "private", j, nil)))
	expect(t, c, "private", mesos.TASK_STARTING, 20*time.Second)
	st := expect(t, c, "private", mesos.TASK_FAILED, 20*time.Second)
	if want := "no search permission on " + private; !strings.HasPrefix(st.GetMessage(), "Failed to initialize sandbox: user nobody cannot reach the sandbox ") ||
		!strings.HasSuffix(st.GetMessage(), want) {
		t.Fatalf("message %q, want one naming user nobody and %s", st.GetMessage(), private)
	}
}
