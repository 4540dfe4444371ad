package agent_test

// Benchmarks of the Mesos master + agent's task launch path, driven by the
// mesos-go v1 HTTP scheduler client as in agent_test.go. The master and the
// agent run in this process; the command executors are re-executions of this
// test binary (see TestMain), as `aurorabox command-executor` is in
// production. The latency benchmark and the baseline:
//
//	go test -run '^$' -bench 'OfferToRunning|ForkExecBaseline' -benchtime 20x -count 1 -timeout 300s ./appliance/mesos/agent/
//
// -benchtime 20x makes BenchmarkOfferToRunning's median-ms the median of 20
// launches (the number). BenchmarkLaunch200 launches 200 tasks per
// iteration, so a few iterations are enough (with `-bench .` and 20x it
// would launch 4000, which takes minutes on a small machine):
//
//	go test -run '^$' -bench Launch200 -benchtime 3x -count 1 -timeout 300s ./appliance/mesos/agent/
//
// Run the baseline in the same invocation as what it is compared with, so
// that ratios compare numbers taken under the same load. The agent isolates
// containers in cgroups where it can (the benchmarks log the mode); each
// container gets a CFS quota of its cpus plus the command executor's 0.1,
// which throttles the executor's start-up. AURORABOX_ISOLATION=none in the
// environment measures without cgroups. Nothing here asserts on speed;
// wrong task states fail the benchmark.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// BenchmarkOfferToRunning measures one command task's launch latency: from
// the scheduler holding an offer, through ACCEPT(LAUNCH) and the
// acknowledgement of TASK_STARTING, to TASK_RUNNING reaching the scheduler.
// That covers the master's accept, the LAUNCH to the agent, the sandbox and
// executor start, the executor's subscription, its start of `sh -c 'sleep
// 3600'` and both status updates' round trips (an agent sends a task's next
// update only once the previous one is acknowledged, as Mesos does). One
// task per iteration; it is killed, and its executor gone, before the next
// iteration, outside the timer.
//
// Metrics: median-ms is the median latency over the iterations (the median
// of 20 with -benchtime 20x), starting-median-ms the median of the ACCEPT →
// TASK_STARTING part, and executor-rss-KB / executor-anon-KB the median
// VmRSS / RssAnon of the command executor process of the running task.
// Executors are this test binary, not the aurorabox binary, so RssFile (the
// binary's pages, shared between executors) differs from production; the
// anonymous part is what each further executor costs.
func BenchmarkOfferToRunning(b *testing.B) {
	s := startBenchCluster(b, "cpus:4;mem:4096;disk:1024")
	var lat, starting []time.Duration
	var rss, anon []float64
	i := 0
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprintf("otr-%d", i)
		i++
		task := benchCommandTask(id, "sleep 3600", 0.1, 32)
		offers := s.offersFitting(0.1, 32, time.Now().Add(benchWait))
		b.StartTimer()

		start := time.Now()
		s.accept(offers, task)
		s.waitFor(time.Now().Add(benchWait), "TASK_RUNNING of "+id, func() bool { return s.state(id) == mesos.TASK_RUNNING })
		end := s.tasks[id].at[mesos.TASK_RUNNING]

		b.StopTimer()
		lat = append(lat, end.Sub(start))
		starting = append(starting, s.tasks[id].at[mesos.TASK_STARTING].Sub(start))
		pids := executorPIDs(id)
		if len(pids) != 1 {
			b.Fatalf("task %s is running, but its command executor pids are %v", id, pids)
		}
		st := procStatus(b, pids[0])
		rss, anon = append(rss, st["VmRSS"]), append(anon, st["RssAnon"])
		s.killAndWait(time.Now().Add(benchWait), id)
		b.StartTimer()
	}
	b.ReportMetric(msOf(median(lat)), "median-ms")
	b.ReportMetric(msOf(median(starting)), "starting-median-ms")
	b.ReportMetric(median(rss), "executor-rss-KB")
	b.ReportMetric(median(anon), "executor-anon-KB")
}

// BenchmarkLaunch200 measures launch throughput: per iteration, 200 small
// command tasks (0.01 cpus, 4 MB each) are launched through as many offers
// as it takes (with the agent's 64 cpus and 64 GB, one offer normally holds
// them all), and the clock stops when the last of them is TASK_RUNNING at
// the scheduler. tasks/s is 200 over that time, averaged over iterations;
// last-starting-ms is when the last TASK_STARTING arrived (median over
// iterations). Killing the 200 tasks and waiting for their TASK_KILLED, for
// the agent to have reaped their executors and for no process of theirs to
// be left is outside the timer.
//
// Tasks take no ports, so the harness' port range does not matter, and the
// agent gets resources of its own so that 200 tasks fit at once.
func BenchmarkLaunch200(b *testing.B) {
	const n = 200
	const cpus, mem = 0.01, 4
	s := startBenchCluster(b, "cpus:64;mem:65536;disk:1024")
	var total time.Duration
	var lastStarting []time.Duration
	iter := 0
	for b.Loop() {
		b.StopTimer()
		var ids []string
		for j := range n {
			ids = append(ids, fmt.Sprintf("l200-%d-%03d", iter, j))
		}
		iter++
		deadline := time.Now().Add(2 * time.Minute)
		s.offersFitting(cpus, mem, deadline) // an offer in hand before the clock starts
		b.StartTimer()

		start := time.Now()
		launched := 0
		for launched < n {
			offers := s.offersFitting(cpus, mem, deadline)
			for _, o := range offers {
				fit := fitting(o, cpus, mem)
				if fit == 0 {
					continue
				}
				fit = min(fit, n-launched)
				var tasks []func(mesos.Offer) mesos.TaskInfo
				for _, id := range ids[launched : launched+fit] {
					tasks = append(tasks, benchCommandTask(id, "sleep 3600", cpus, mem))
				}
				s.accept([]mesos.Offer{o}, tasks...)
				launched += fit
				if launched == n {
					break
				}
			}
		}
		s.waitFor(deadline, fmt.Sprintf("%d tasks TASK_RUNNING", n), func() bool { return s.running == n })
		var last time.Time
		var lastStart time.Time
		for _, id := range ids {
			if t := s.tasks[id].at[mesos.TASK_RUNNING]; t.After(last) {
				last = t
			}
			if t := s.tasks[id].at[mesos.TASK_STARTING]; t.After(lastStart) {
				lastStart = t
			}
		}

		b.StopTimer()
		total += last.Sub(start)
		lastStarting = append(lastStarting, lastStart.Sub(start))
		s.killAndWait(deadline, ids...)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*iter)/total.Seconds(), "tasks/s")
	b.ReportMetric(msOf(median(lastStarting)), "last-starting-ms")
}

// BenchmarkForkExecBaseline is the floor for "launch a process", measured
// in the same run so that the benchmarks above can be given as ratios.
// Launching a command task necessarily costs, in sequence, starting the
// command executor (a Go binary: fork, exec, runtime and package init) and
// the executor starting `/bin/sh -c <command>`; everything else on the path
// (HTTP round trips, JSON, checkpoints, the scheduler's acknowledgements) is
// overhead of the protocol and of our implementation. So:
//
//   - executor-binary: os/exec start+wait of this test binary as
//     `command-executor` with no MESOS_* environment: it initializes exactly
//     as a real command executor does and exits at reading its
//     configuration, before any HTTP.
//   - sh-c: start+wait of `/bin/sh -c true`, the task command's wrapper.
//   - executor-then-sh: both in sequence, the floor for offer→running.
//   - bin-true: start+wait of /bin/true, the floor of any process launch.
//
// With Setsid like the agent's executors. Start+wait and not start alone:
// the executor has to be up and running Go code before it can report, so
// its start-up (which its exit barely adds to) belongs to the floor.
func BenchmarkForkExecBaseline(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	executorBinary := func(b *testing.B) {
		cmd := exec.Command(self, agent.CommandExecutorRole)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		benchRun(b, cmd, 1)
	}
	shC := func(b *testing.B) { benchRun(b, exec.Command("/bin/sh", "-c", "true"), 0) }
	b.Run("executor-binary", func(b *testing.B) {
		for b.Loop() {
			executorBinary(b)
		}
	})
	b.Run("sh-c", func(b *testing.B) {
		for b.Loop() {
			shC(b)
		}
	})
	b.Run("executor-then-sh", func(b *testing.B) {
		for b.Loop() {
			executorBinary(b)
			shC(b)
		}
	})
	b.Run("bin-true", func(b *testing.B) {
		for b.Loop() {
			benchRun(b, exec.Command("/bin/true"), 0)
		}
	})
}

// benchRun runs cmd to completion in its own session and fails b unless it
// exits with status want.
func benchRun(b *testing.B, cmd *exec.Cmd, want int) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		b.Fatal(err)
	}
	if code != want {
		b.Fatalf("%v: exit status %d, want %d: %s", cmd.Args, code, want, stderr.String())
	}
}

// benchWait bounds every wait of a single task's launch or kill.
const benchWait = 30 * time.Second

// startBenchCluster is startCluster with the agent resources given (as the
// agent's --resources) and testing.B's cleanup; it returns the subscribed
// scheduler. Whatever a benchmark leaves running, the agent's Shutdown kills
// at cleanup.
func startBenchCluster(b *testing.B, res string) *benchSched {
	b.Helper()
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: msrv.Listener.Addr().String(), AgentSecret: testAgentSecret, RootSubmissions: true})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	b.Cleanup(msrv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	rs, err := agent.ParseResources(res + ";" + mesostest.ReservePorts(b, 11).Resource())
	if err != nil {
		b.Fatal(err)
	}
	attrs, _ := agent.ParseAttributes("rack:r1;host:h1")
	workDir := b.TempDir()
	// The agent's default isolator, made here to log its mode: cgroup
	// limits (the CFS quota above all) shape these numbers.
	iso, err := isolation.New(isolation.AgentRoot(workDir, ""), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("isolation: %s %s", iso.Mode(), iso.Reason())
	a, err := agent.New(agent.Config{
		ListenAddr: ln.Addr().String(), MasterURL: msrv.URL, WorkDir: workDir, Resources: rs, Attributes: attrs,
		Exe: self, ExecutorShutdownGrace: time.Second, Isolator: iso, MasterSecret: testAgentSecret,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { a.Run(ctx, ln); close(stopped) }()
	b.Cleanup(func() {
		a.Shutdown()
		cancel()
		<-stopped
	})
	s := benchSubscribe(b, msrv.URL)
	s.workDir = workDir
	return s
}

// benchSched is a scheduler for benchmarks: like agent_test.go's sched, but
// for a testing.B, keeping the offers it holds and every task's states.
type benchSched struct {
	b       *testing.B
	caller  calls.Caller
	events  chan *scheduler.Event
	fwID    string
	offers  map[string]mesos.Offer // held, by id
	tasks   map[string]*benchTask  // launched and not yet terminal
	running int                    // how many tasks are TASK_RUNNING
	workDir string                 // the agent's
}

type benchTask struct {
	state   mesos.TaskState
	at      map[mesos.TaskState]time.Time // when the scheduler got each state
	killing bool
}

func benchSubscribe(b *testing.B, masterURL string) *benchSched {
	b.Helper()
	cli := httpcli.New(httpcli.Endpoint(masterURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]))
	s := &benchSched{
		b: b, caller: httpsched.NewCaller(cli), events: make(chan *scheduler.Event, 8192),
		offers: map[string]mesos.Offer{}, tasks: map[string]*benchTask{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	host := "localhost"
	resp, err := s.caller.Call(ctx, calls.Subscribe(&mesos.FrameworkInfo{User: "root", Name: "bench", Hostname: &host}))
	if err != nil {
		b.Fatal(err)
	}
	mesostest.Pump[scheduler.Event](resp, s.events)
	s.waitFor(time.Now().Add(benchWait), "SUBSCRIBED", func() bool { return s.fwID != "" })
	return s
}

// handle applies one event: offers are kept, updates acknowledged and
// checked. A task may only go STARTING, RUNNING and, once we kill it,
// KILLED: anything else fails the benchmark.
func (s *benchSched) handle(ev *scheduler.Event) {
	switch ev.Type {
	case scheduler.Event_SUBSCRIBED:
		s.fwID = ev.Subscribed.FrameworkID.Value
	case scheduler.Event_OFFERS:
		for _, o := range ev.Offers.Offers {
			s.offers[o.ID.Value] = o
		}
	case scheduler.Event_RESCIND:
		delete(s.offers, ev.Rescind.OfferID.Value)
	case scheduler.Event_UPDATE:
		now := time.Now()
		st := ev.Update.Status
		if st.UUID != nil {
			resp, err := s.caller.Call(context.Background(), calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID).With(calls.Framework(s.fwID)))
			if err != nil {
				s.b.Fatalf("acknowledging %s of %s: %v", st.GetState(), st.TaskID.Value, err)
			}
			closeResp(resp)
		}
		t := s.tasks[st.TaskID.Value]
		if t == nil {
			return // a resent update of a task already done
		}
		state := st.GetState()
		switch {
		case state == mesos.TASK_STARTING || state == mesos.TASK_RUNNING:
		case state == mesos.TASK_KILLED && t.killing:
		default:
			s.b.Fatalf("task %s went %s → %s (reason %s, source %s): %s",
				st.TaskID.Value, t.state, state, st.GetReason(), st.GetSource(), st.GetMessage())
		}
		if t.state == mesos.TASK_RUNNING {
			s.running--
		}
		if state == mesos.TASK_RUNNING {
			s.running++
		}
		t.state = state
		if _, dup := t.at[state]; !dup {
			t.at[state] = now
		}
		if state == mesos.TASK_KILLED {
			delete(s.tasks, st.TaskID.Value)
		}
	case scheduler.Event_ERROR:
		s.b.Fatalf("master error: %s", ev.Error.GetMessage())
	case scheduler.Event_FAILURE:
		s.b.Fatalf("failure event: %v", ev.Failure)
	}
}

// waitFor handles events until done holds, failing at the deadline.
func (s *benchSched) waitFor(deadline time.Time, what string, done func() bool) {
	s.b.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for !done() {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.b.Fatalf("scheduler stream closed waiting for %s", what)
			}
			s.handle(ev)
		case <-timer.C:
			s.b.Fatalf("timed out waiting for %s", what)
		}
	}
}

// drain handles the events already received.
func (s *benchSched) drain() {
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.b.Fatal("scheduler stream closed")
			}
			s.handle(ev)
		default:
			return
		}
	}
}

// offersFitting returns the offers held once one of them fits a task of
// cpus and mem.
func (s *benchSched) offersFitting(cpus float64, mem uint64, deadline time.Time) []mesos.Offer {
	s.b.Helper()
	s.drain()
	fits := func() bool {
		for _, o := range s.offers {
			if fitting(o, cpus, mem) > 0 {
				return true
			}
		}
		return false
	}
	s.waitFor(deadline, "an offer", fits)
	var out []mesos.Offer
	for _, o := range s.offers {
		out = append(out, o)
	}
	return out
}

// fitting is how many tasks of cpus and mem an offer holds.
func fitting(o mesos.Offer, cpus float64, mem uint64) int {
	c, _ := resources.CPUs(o.Resources...)
	m, _ := resources.Memory(o.Resources...)
	return min(int(math.Floor(c/cpus+1e-6)), int(m/mem))
}

// accept launches tasks on offers (of one agent); what they do not use goes
// back to the master.
func (s *benchSched) accept(offers []mesos.Offer, tasks ...func(mesos.Offer) mesos.TaskInfo) {
	s.b.Helper()
	var ids []mesos.OfferID
	for _, o := range offers {
		ids = append(ids, o.ID)
		delete(s.offers, o.ID.Value)
	}
	var infos []mesos.TaskInfo
	for _, f := range tasks {
		info := f(offers[0])
		infos = append(infos, info)
		s.tasks[info.TaskID.Value] = &benchTask{state: mesos.TASK_STAGING, at: map[mesos.TaskState]time.Time{}}
	}
	resp, err := s.caller.Call(context.Background(), calls.Accept(calls.OfferOperations{calls.OpLaunch(infos...)}.WithOffers(ids...)).With(calls.Framework(s.fwID)))
	if err != nil {
		s.b.Fatal(err)
	}
	closeResp(resp)
}

func (s *benchSched) state(id string) mesos.TaskState {
	if t := s.tasks[id]; t != nil {
		return t.state
	}
	return -1
}

// killAndWait kills tasks, waits for their TASK_KILLED and then for their
// executors (and commands) to be gone.
func (s *benchSched) killAndWait(deadline time.Time, ids ...string) {
	s.b.Helper()
	for _, id := range ids {
		s.tasks[id].killing = true
		resp, err := s.caller.Call(context.Background(), calls.Kill(id, "").With(calls.Framework(s.fwID)))
		if err != nil {
			s.b.Fatal(err)
		}
		closeResp(resp)
	}
	s.waitFor(deadline, "TASK_KILLED", func() bool {
		for _, id := range ids {
			if s.tasks[id] != nil {
				return false
			}
		}
		return true
	})
	// The agent reaps its executors before it drops their checkpoints, so
	// wait for that first and only then scan /proc (costly with hundreds of
	// processes) for anything of the framework's left over.
	s.waitAgentQuiet(deadline)
	for {
		left := processesWithEnv(func(kv string) bool { return kv == "MESOS_FRAMEWORK_ID="+s.fwID })
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.b.Fatalf("processes of killed tasks still there: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAgentQuiet waits for the agent to have checkpointed the end of every
// executor (no run.json left) and every acknowledgement (no status update
// pending in updates.json): the agent processes acknowledgements after the
// master has answered ours, and the next iteration, or the removal of the
// work dir, must not overlap with that.
func (s *benchSched) waitAgentQuiet(deadline time.Time) {
	s.b.Helper()
	meta := filepath.Join(s.workDir, "meta", "slaves", "*")
	for {
		runs, _ := filepath.Glob(filepath.Join(meta, "frameworks", "*", "executors", "*", "runs", "*", "run.json"))
		updates, _ := filepath.Glob(filepath.Join(meta, "updates.json"))
		pending := 0
		for _, u := range updates {
			data, err := os.ReadFile(u)
			if err != nil {
				pending++ // being replaced
				continue
			}
			var all []json.RawMessage
			if json.Unmarshal(data, &all) != nil || len(all) > 0 {
				pending++
			}
		}
		if len(runs) == 0 && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.b.Fatalf("agent not quiet: executor checkpoints %v, %d updates.json with pending updates", runs, pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func benchCommandTask(id, command string, cpus float64, mem float64) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
			Command:   &mesos.CommandInfo{Value: &command},
			Resources: []mesos.Resource{resources.NewCPUs(cpus).Resource, resources.NewMemory(mem).Resource},
		}
	}
}

// procStatus reads the kB fields of /proc/<pid>/status (VmRSS, RssAnon, ...).
func procStatus(b *testing.B, pid int) map[string]float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return out
}

func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
