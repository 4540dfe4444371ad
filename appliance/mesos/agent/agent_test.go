package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/isolation"
	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/commandexec"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/limits"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	ecalls "github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// The test binary doubles as the executors the agent launches.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case agent.CommandExecutorRole:
			if err := commandexec.Run(context.Background(), slog.Default()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "custom-executor":
			customExecutor()
			os.Exit(0)
		case "echo-executor":
			echoExecutor()
			os.Exit(0)
		case "agent-process":
			agentProcess()
			os.Exit(0)
		case "memhog":
			memhog()
		}
	}
	os.Exit(m.Run())
}

// customExecutor is a minimal third-party executor written directly against
// mesos-go's executor client: it reports RUNNING, then FINISHED with the
// task's data as the message.
func customExecutor() {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	u := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cli := httpcli.New(httpcli.Endpoint(u.String()), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]))
	opts := executor.CallOptions{ecalls.Framework(cfg.FrameworkID), ecalls.Executor(cfg.ExecutorID)}
	send := ecalls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	sub := ecalls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	resp, err := sub.Send(context.Background(), ecalls.NonStreaming(ecalls.Subscribe(nil, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Close()
	update := func(t mesos.TaskInfo, s mesos.TaskState, msg string) {
		st := mesos.TaskStatus{TaskID: t.TaskID, State: s.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: []byte(t.TaskID.Value + s.String()), Message: &msg}
		ecalls.SendNoData(context.Background(), send, ecalls.NonStreaming(ecalls.Update(st)))
	}
	pending := 0
	for {
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			return
		}
		switch ev.Type {
		case executor.Event_LAUNCH:
			update(ev.Launch.Task, mesos.TASK_RUNNING, "")
			update(ev.Launch.Task, mesos.TASK_FINISHED, string(ev.Launch.Task.Data))
			pending += 2
		case executor.Event_ACKNOWLEDGED:
			if pending--; pending == 0 {
				return
			}
		case executor.Event_SHUTDOWN:
			return
		}
	}
}

type cluster struct {
	t         *testing.T
	master    *master.Master
	masterURL string
	agent     *agent.Agent
	agentURL  string
	workDir   string
	sched     *sched
}

// testAgentSecret authenticates the test agents to their masters.
var testAgentSecret = []byte("test-agent-secret-0123456789abcdef0123456789")

// testDeclineDelay is the test masters' refuse filter for ACCEPT and
// DECLINE calls without filters (Mesos' 5 s by default): these tests'
// frameworks launch again on what is left of an offer.
const testDeclineDelay = 100 * time.Millisecond

// startCluster runs a master and an agent, and subscribes a framework.
func startCluster(t *testing.T, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	c := startMasterAndAgent(t, opts...)
	c.sched = subscribe(t, c.masterURL)
	return c
}

// startMasterAndAgent runs a master and an agent, with no framework.
func startMasterAndAgent(t *testing.T, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: msrv.Listener.Addr().String(), AgentSecret: testAgentSecret, RootSubmissions: true})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	t.Cleanup(msrv.Close)
	c := startAgent(t, msrv.URL, opts...)
	c.master, c.masterURL = m, msrv.URL
	return c
}

// startAgent runs an agent registered with the master at masterURL.
func startAgent(t *testing.T, masterURL string, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	workDir := t.TempDir()
	res, _ := agent.ParseResources("cpus:2;mem:1024;disk:1024;" + mesostest.ReservePorts(t, 11).Resource())
	attrs, _ := agent.ParseAttributes("rack:r1;host:h1")
	cfg := agent.Config{
		ListenAddr: ln.Addr().String(), MasterURL: masterURL, WorkDir: workDir, Resources: res, Attributes: attrs,
		Exe: self, ExecutorShutdownGrace: time.Second, MasterSecret: testAgentSecret,
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { a.Run(ctx, ln); close(stopped) }()
	t.Cleanup(func() {
		a.Shutdown()
		cancel()
		<-stopped // it writes checkpoints until Run returns, and the temp dir goes next
	})
	return &cluster{t: t, agent: a, agentURL: "http://" + ln.Addr().String(), workDir: workDir}
}

type sched struct {
	t      *testing.T
	caller calls.Caller
	events chan *scheduler.Event
	queued []*scheduler.Event
	fwID   string
	cancel context.CancelFunc // ends the subscription
}

// subscribe subscribes a framework with mesos-go's scheduler client and the
// protobuf codec.
func subscribe(t *testing.T, masterURL string, opts ...func(*mesos.FrameworkInfo)) *sched {
	return subscribeCodec(t, masterURL, codecs.MediaTypeProtobuf, opts...)
}

func subscribeCodec(t *testing.T, masterURL string, media encoding.MediaType, opts ...func(*mesos.FrameworkInfo)) *sched {
	t.Helper()
	cli := httpcli.New(httpcli.Endpoint(masterURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[media]))
	s := &sched{t: t, caller: httpsched.NewCaller(cli), events: make(chan *scheduler.Event, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	t.Cleanup(cancel)
	host := "localhost"
	fw := &mesos.FrameworkInfo{User: "root", Name: "test", Hostname: &host}
	for _, o := range opts {
		o(fw)
	}
	call := calls.Subscribe(fw)
	if fw.ID != nil {
		call = call.With(calls.SubscribeTo(fw.ID.Value))
	}
	resp, err := s.caller.Call(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	mesostest.Pump[scheduler.Event](resp, s.events)
	s.fwID = s.next(scheduler.Event_SUBSCRIBED).Subscribed.FrameworkID.Value
	return s
}

func (s *sched) next(want scheduler.Event_Type) *scheduler.Event {
	s.t.Helper()
	return s.take(func(ev *scheduler.Event) bool { return ev.Type == want }, want.String())
}

// take returns the first queued or arriving event that matches, queueing
// the others. Updates are acknowledged as they arrive.
func (s *sched) take(match func(*scheduler.Event) bool, what string) *scheduler.Event {
	s.t.Helper()
	for i, ev := range s.queued {
		if match(ev) {
			s.queued = append(s.queued[:i], s.queued[i+1:]...)
			return ev
		}
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("stream closed waiting for %s", what)
			}
			if ev.Type == scheduler.Event_UPDATE && ev.Update.Status.UUID != nil {
				st := ev.Update.Status
				resp, err := s.caller.Call(context.Background(), calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID).With(calls.Framework(s.fwID)))
				if err != nil {
					s.t.Fatal(err)
				}
				closeResp(resp)
			}
			if match(ev) {
				return ev
			}
			if ev.Type != scheduler.Event_HEARTBEAT {
				s.queued = append(s.queued, ev)
			}
		case <-timeout:
			s.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// updateFor returns the next status update of task.
func (s *sched) updateFor(task string) mesos.TaskStatus {
	s.t.Helper()
	return s.take(func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_UPDATE && ev.Update.Status.TaskID.Value == task
	}, "an update of "+task).Update.Status
}

func (s *sched) launch(tasks ...func(offer mesos.Offer) mesos.TaskInfo) {
	s.t.Helper()
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	var infos []mesos.TaskInfo
	for _, f := range tasks {
		infos = append(infos, f(offer))
	}
	resp, err := s.caller.Call(context.Background(), calls.Accept(calls.OfferOperations{calls.OpLaunch(infos...)}.WithOffers(offer.ID)).With(calls.Framework(s.fwID)))
	if err != nil {
		s.t.Fatal(err)
	}
	closeResp(resp)
}

func closeResp(r mesos.Response) {
	if r != nil {
		r.Close()
	}
}

func shellTask(id, command string) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
			Command:   &mesos.CommandInfo{Value: &command},
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
		}
	}
}

func (c *cluster) state() map[string]any {
	resp, err := http.Get(c.agentURL + "/state")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	return st
}

// sandbox finds an executor's sandbox through /state, as tools do.
func (c *cluster) sandbox(executorID string) string {
	for _, fw := range c.state()["frameworks"].([]any) {
		f := fw.(map[string]any)
		for _, key := range []string{"executors", "completed_executors"} {
			for _, ex := range f[key].([]any) {
				e := ex.(map[string]any)
				if e["id"] == executorID {
					return e["directory"].(string)
				}
			}
		}
	}
	c.t.Fatalf("no executor %s in agent state", executorID)
	return ""
}

func (c *cluster) get(path string, q url.Values) (int, string) {
	resp, err := http.Get(c.agentURL + path + "?" + q.Encode())
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCommandTaskLifecycle(t *testing.T) {
	c := startCluster(t)
	s := c.sched
	s.launch(shellTask("hello", `echo "hello from $MESOS_EXECUTOR_ID"; echo sandbox > in-sandbox.txt`))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		if st := s.updateFor("hello"); st.GetState() != want {
			t.Fatalf("got %s (%s), want %s", st.GetState(), st.GetMessage(), want)
		}
	}
	dir := c.sandbox("hello")
	if !strings.Contains(dir, filepath.Join("frameworks", s.fwID, "executors", "hello", "runs")) {
		t.Fatalf("sandbox layout: %s", dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("sandbox mode: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "in-sandbox.txt")); string(b) != "sandbox\n" {
		t.Fatalf("command did not run in its sandbox: %q", b)
	}
	latest := filepath.Join(filepath.Dir(dir), "latest")
	if target, _ := os.Readlink(latest); target != filepath.Base(dir) {
		t.Fatalf("latest -> %q", target)
	}

	// The files API serves the sandbox through the latest link.
	code, body := c.get("/files/read", url.Values{"path": {filepath.Join(latest, "stdout")}, "offset": {"0"}})
	if code != 200 || !strings.Contains(body, `hello from hello`) {
		t.Fatalf("read stdout: %d %s", code, body)
	}
	code, body = c.get("/files/read", url.Values{"path": {filepath.Join(latest, "stdout")}, "offset": {"-1"}})
	if code != 200 || !strings.Contains(body, `"offset":`) || strings.Contains(body, `"offset":-1`) {
		t.Fatalf("read length: %d %s", code, body)
	}
	code, body = c.get("/files/browse", url.Values{"path": {dir}})
	if code != 200 || !strings.Contains(body, `"path":"`+filepath.Join(dir, "stdout")+`"`) || !strings.Contains(body, `"mode":"-rw-r--r--"`) {
		t.Fatalf("browse: %d %s", code, body)
	}
	code, body = c.get("/files/download", url.Values{"path": {filepath.Join(dir, "in-sandbox.txt")}})
	if code != 200 || body != "sandbox\n" {
		t.Fatalf("download: %d %q", code, body)
	}
}

func TestFilesConfinedToSandbox(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("escape", `ln -s /etc/passwd passwd-link; ln -s / root-link; mkdir d; ln -s ../../ d/up`))
	for range 3 {
		c.sched.updateFor("escape")
	}
	dir := c.sandbox("escape")
	tests := []struct {
		name, endpoint, path string
		want                 int
	}{
		{"dotdot out of the sandbox", "/files/read", dir + "/../../../../../../../../../etc/passwd", 403},
		{"dotdot to the work dir", "/files/browse", dir + "/../../../../../../..", 403},
		{"symlink to a file outside", "/files/read", dir + "/passwd-link", 403},
		{"symlink to /", "/files/browse", dir + "/root-link", 403},
		{"relative symlink up", "/files/browse", dir + "/d/up", 403},
		{"outside entirely", "/files/read", "/etc/passwd", 403},
		{"relative path", "/files/read", "etc/passwd", 400},
		{"missing file", "/files/read", dir + "/nope", 404},
		{"inside is fine", "/files/read", dir + "/stdout", 200},
		{"dotdot that stays inside", "/files/browse", dir + "/d/..", 200},
	}
	for _, tt := range tests {
		if code, body := c.get(tt.endpoint, url.Values{"path": {tt.path}}); code != tt.want {
			t.Errorf("%s: %s %s → %d %s, want %d", tt.name, tt.endpoint, tt.path, code, body, tt.want)
		}
	}
}

func TestKillAndFailure(t *testing.T) {
	c := startCluster(t)
	s := c.sched
	s.launch(shellTask("sleeper", "sleep 300"), shellTask("failing", "echo oops >&2; exit 3"))
	seen := map[string][]mesos.TaskState{}
	for len(seen["sleeper"]) < 2 || len(seen["failing"]) < 3 {
		st := s.next(scheduler.Event_UPDATE).Update.Status
		seen[st.TaskID.Value] = append(seen[st.TaskID.Value], st.GetState())
		if st.TaskID.Value == "failing" && st.GetState() == mesos.TASK_FAILED && st.GetMessage() != "Command exited with status 3" {
			t.Fatalf("failure message %q", st.GetMessage())
		}
	}
	if f := seen["failing"]; f[2] != mesos.TASK_FAILED {
		t.Fatalf("failing: %v", f)
	}
	resp, err := s.caller.Call(context.Background(), calls.Kill("sleeper", "").With(calls.Framework(s.fwID)))
	if err != nil {
		t.Fatal(err)
	}
	closeResp(resp)
	if st := s.updateFor("sleeper"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("kill: %s %s", st.GetState(), st.GetMessage())
	}
}

func TestCustomExecutor(t *testing.T) {
	c := startCluster(t)
	self, _ := os.Executable()
	c.sched.launch(func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: "custom", TaskID: mesos.TaskID{Value: "custom-1"}, AgentID: o.AgentID, Data: []byte("payload"),
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
			Executor: &mesos.ExecutorInfo{
				ExecutorID: mesos.ExecutorID{Value: "thermos-custom-1"},
				Command:    &mesos.CommandInfo{Value: &self, Arguments: []string{self, "custom-executor"}, Shell: new(bool)},
				Resources:  []mesos.Resource{resources.NewCPUs(0.05).Resource, resources.NewMemory(16).Resource},
			},
		}
	})
	if st := c.sched.updateFor("custom-1"); st.GetState() != mesos.TASK_RUNNING || st.GetExecutorID().GetValue() != "thermos-custom-1" {
		t.Fatalf("custom executor: %v", st)
	}
	if st := c.sched.updateFor("custom-1"); st.GetState() != mesos.TASK_FINISHED || st.GetMessage() != "payload" {
		t.Fatalf("custom executor: %v", st)
	}
	if dir := c.sandbox("thermos-custom-1"); !strings.Contains(dir, "/executors/thermos-custom-1/runs/") {
		t.Fatalf("sandbox %s", dir)
	}
}

// An executor that dies takes its tasks to TASK_FAILED with the reason.
func TestExecutorDeathFailsTasks(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("doomed", "sleep 300"))
	for range 2 {
		c.sched.updateFor("doomed")
	}
	// Kill the command executor itself, found by its MESOS_EXECUTOR_ID.
	pids := executorPIDs("doomed")
	if len(pids) != 1 {
		t.Fatalf("executor pids %v", pids)
	}
	syscall.Kill(pids[0], syscall.SIGKILL)
	got := c.sched.updateFor("doomed")
	if got.GetState() != mesos.TASK_FAILED || got.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || got.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("after executor death: %s %s %s", got.GetState(), got.GetReason(), got.GetSource())
	}
}

// executorPIDs finds the command executor processes of an executor id. A
// child the executor has forked but not yet exec'd looks like it (same
// cmdline and environment) and is left out: its parent is in the set.
func executorPIDs(id string) []int {
	var found []int
	for _, pid := range processesWithEnv(func(kv string) bool { return kv == "MESOS_EXECUTOR_ID="+id }) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(agent.CommandExecutorRole)) {
			found = append(found, pid)
		}
	}
	var out []int
	for _, pid := range found {
		if !slices.Contains(found, parentPID(pid)) {
			out = append(out, pid)
		}
	}
	return out
}

// parentPID reads a process's PPid from /proc, 0 if it is gone.
func parentPID(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// processesWithEnv lists the processes with an environment entry that
// match accepts.
func processesWithEnv(match func(kv string) bool) []int {
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	var out []int
	for _, e := range entries {
		env, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if match(kv) {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(e)))
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// TestUnansweredPingsReregister: the master drops an agent that leaves its
// pings unanswered (its offers are rescinded); the agent reads the end of
// its stream and, answering again, re-registers under the same id.
func TestUnansweredPingsReregister(t *testing.T) {
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{DeclineDelay: testDeclineDelay, ListenAddr: msrv.Listener.Addr().String(), AgentSecret: testAgentSecret, RootSubmissions: true, AgentPingTimeout: 50 * time.Millisecond, MaxAgentPingTimeouts: 2})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	t.Cleanup(msrv.Close)
	var mute atomic.Bool
	startAgent(t, msrv.URL, func(cfg *agent.Config) { cfg.IgnorePings = mute.Load })
	s := subscribe(t, msrv.URL)
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]

	mute.Store(true)
	s.take(func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_RESCIND && ev.Rescind.OfferID == offer.ID
	}, "the rescinded offer of the agent that stopped answering")
	mute.Store(false)
	s.take(func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_OFFERS && ev.Offers.Offers[0].AgentID == offer.AgentID && ev.Offers.Offers[0].ID != offer.ID
	}, "an offer of the re-registered agent")
}

// TestUnknownUserFailsLaunch: a root agent asked to run an executor as a
// user that does not exist fails the launch, naming the user, rather than
// run it as root.
func TestUnknownUserFailsLaunch(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root agent switches users")
	}
	c := startCluster(t)
	s := c.sched
	s.launch(func(o mesos.Offer) mesos.TaskInfo {
		info := shellTask("nouser", "id -u > uid; sleep 300")(o)
		info.Command.User = proto.String("aurorabox-no-such-user")
		return info
	})
	st := s.updateFor("nouser")
	if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED ||
		st.GetMessage() != "executor user: user aurorabox-no-such-user does not exist" {
		t.Fatalf("nouser: %s %s %q, want TASK_FAILED REASON_CONTAINER_LAUNCH_FAILED naming the user", st.GetState(), st.GetReason(), st.GetMessage())
	}
}

// TestSandboxPathSearchOnly: the directories from the work dir down to a
// run directory let other users pass (search) but not list them; the run
// directory and the meta dir (checkpoints with every task's config) are
// the agent's or the task user's alone.
func TestSandboxPathSearchOnly(t *testing.T) {
	c := startCluster(t)
	s := c.sched
	s.launch(shellTask("first", "true"))
	for st := s.updateFor("first"); !mesosutilTerminal(st.GetState()); st = s.updateFor("first") {
	}
	// As an older agent left it: listable.
	if err := os.Chmod(filepath.Join(c.workDir, "slaves"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.launch(shellTask("modes", "true"))
	for st := s.updateFor("modes"); !mesosutilTerminal(st.GetState()); st = s.updateFor("modes") {
	}
	run, err := filepath.EvalSymlinks(c.sandbox("modes"))
	if err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(run); d != c.workDir; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o711 {
			t.Errorf("%s: %v, want 0711 (search only)", d, fi.Mode().Perm())
		}
	}
	for _, d := range []string{run, filepath.Join(c.workDir, "meta")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want 0700", d, fi.Mode().Perm(), err)
		}
	}
}

// TestOldMetaDirMadePrivate: an agent starting on a work dir whose meta
// dir an older agent made 0755 makes it 0700.
func TestOldMetaDirMadePrivate(t *testing.T) {
	t.Setenv(isolation.EnvMode, "none") // the agent never runs: no cgroups
	workDir := t.TempDir()
	meta := filepath.Join(workDir, "meta")
	if err := os.MkdirAll(filepath.Join(meta, "slaves"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(agent.Config{ListenAddr: "127.0.0.1:0", MasterURL: "http://127.0.0.1:1", WorkDir: workDir,
		Exe: "/bin/true", MasterSecret: testAgentSecret}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(meta); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v, want 0700", meta, fi.Mode().Perm(), err)
	}
}

func mesosutilTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST, mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE:
		return true
	}
	return false
}

// TestExecutorAuthentication: with AuthenticateExecutors, an executor's
// calls need its own token, which the agent hands it (and not its task):
// a local user without it, or an executor holding another's, cannot send
// updates.
func TestExecutorAuthentication(t *testing.T) {
	c := startCluster(t, func(cfg *agent.Config) { cfg.AuthenticateExecutors = true })
	s := c.sched
	s.launch(shellTask("authed", `env > env.txt; sleep 300`), shellTask("other", `sleep 300`))
	for _, id := range []string{"authed", "other"} {
		for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
			if st := s.updateFor(id); st.GetState() != want {
				t.Fatalf("%s: got %s (%s), want %s", id, st.GetState(), st.GetMessage(), want)
			}
		}
	}
	dir := c.sandbox("authed")
	deadline := time.Now().Add(10 * time.Second)
	var env []byte
	for len(env) == 0 && time.Now().Before(deadline) {
		env, _ = os.ReadFile(filepath.Join(dir, "env.txt"))
		time.Sleep(20 * time.Millisecond)
	}
	if len(env) == 0 || strings.Contains(string(env), agent.EnvExecutorToken) {
		t.Errorf("the task's environment (%d bytes) holds the executor's token, or was not written", len(env))
	}
	// The other executor's token, from its environment.
	var otherToken string
	for _, p := range executorPIDs("other") {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, agent.EnvExecutorToken+"="); ok {
				otherToken = v
			}
		}
	}
	if otherToken == "" {
		t.Fatal("the other executor got no token")
	}
	ts := float64(time.Now().Unix())
	forged := executor.Call{
		Type: executor.Call_UPDATE, FrameworkID: mesos.FrameworkID{Value: s.fwID}, ExecutorID: mesos.ExecutorID{Value: "authed"},
		Update: &executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: "authed"}, State: mesos.TASK_FAILED.Enum(),
			Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: []byte("0123456789abcdef"), Timestamp: &ts, ExecutorID: &mesos.ExecutorID{Value: "authed"}}},
	}
	body, _ := json.Marshal(&forged)
	for _, auth := range []string{"", "Bearer " + otherToken, "Bearer garbage"} {
		req, _ := http.NewRequest("POST", c.agentURL+"/api/v1/executor", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged UPDATE with Authorization %q: %s, want 401", auth, resp.Status)
		}
	}
	resp, err := s.caller.Call(context.Background(), calls.Kill("authed", "").With(calls.Framework(s.fwID)))
	if err != nil {
		t.Fatal(err)
	}
	closeResp(resp)
	if st := s.updateFor("authed"); st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("authed after the forged updates: %s %q, want TASK_KILLED on request", st.GetState(), st.GetMessage())
	}
}

// A task whose LAUNCH event is larger than an executor reads is refused
// (TASK_ERROR, with the limit) without starting an executor for it.
func TestTaskTooLargeForExecutorIsRefused(t *testing.T) {
	c := startCluster(t)
	self, _ := os.Executable()
	c.sched.launch(func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: "big", TaskID: mesos.TaskID{Value: "big-1"}, AgentID: o.AgentID, Data: bytes.Repeat([]byte("x"), limits.ExecutorEventBytes),
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
			Executor: &mesos.ExecutorInfo{
				ExecutorID: mesos.ExecutorID{Value: "thermos-big-1"},
				Command:    &mesos.CommandInfo{Value: &self, Arguments: []string{self, "custom-executor"}, Shell: new(bool)},
				Resources:  []mesos.Resource{resources.NewCPUs(0.05).Resource, resources.NewMemory(16).Resource},
			},
		}
	})
	st := c.sched.updateFor("big-1")
	if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_INVALID || !strings.Contains(st.GetMessage(), strconv.Itoa(limits.ExecutorEventBytes)) {
		t.Fatalf("update %v %v %q; want TASK_ERROR REASON_TASK_INVALID naming the %d-byte limit", st.GetState(), st.GetReason(), st.GetMessage(), limits.ExecutorEventBytes)
	}
	if pids := executorPIDs("thermos-big-1"); len(pids) != 0 {
		t.Fatalf("an executor was started for the refused task: %v", pids)
	}
}
