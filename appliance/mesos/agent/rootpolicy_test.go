package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// rootTestPrincipal and rootTestSecret are the framework credential of the
// masters of the root policy tests.
const rootTestPrincipal, rootTestSecret = "aurora", "s3cret-aurora-0123456789"

// startRootPolicyCluster runs a master with a framework credential and
// root_submissions as given, and an agent.
func startRootPolicyCluster(t *testing.T, rootSubmissions bool) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root agent runs tasks as root")
	}
	msrv := httptest.NewUnstartedServer(nil)
	m := master.New(master.Config{ListenAddr: msrv.Listener.Addr().String(), AgentSecret: testAgentSecret,
		Credentials: master.Credentials{rootTestPrincipal: rootTestSecret}, RootSubmissions: rootSubmissions})
	msrv.Config.Handler = m.Handler()
	msrv.Start()
	t.Cleanup(msrv.Close)
	c := startAgent(t, msrv.URL)
	c.master, c.masterURL = m, msrv.URL
	// Test temp dirs are 0700: www-data's tasks reach their sandboxes
	// through a searchable path, as the appliance lays it out.
	for d := filepath.Dir(c.workDir); d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	return c
}

// subscribeAs subscribes a framework of user with mesos-go's client,
// authenticated as rootTestPrincipal when authenticate is set (every call
// then carries the credential).
func subscribeAs(t *testing.T, masterURL, user string, authenticate bool) *sched {
	t.Helper()
	var opts []httpcli.ConfigOpt
	if authenticate {
		opts = append(opts, httpcli.BasicAuth(rootTestPrincipal, rootTestSecret))
	}
	cli := httpcli.New(httpcli.Endpoint(masterURL+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(opts...)))
	s := &sched{t: t, caller: httpsched.NewCaller(cli, httpsched.MaxRedirects(0)), events: make(chan *scheduler.Event, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	t.Cleanup(cancel)
	resp, err := s.caller.Call(ctx, calls.Subscribe(&mesos.FrameworkInfo{User: user, Name: "root-policy", Hostname: proto.String("localhost")}))
	if err != nil {
		t.Fatal(err)
	}
	mesostest.Pump[scheduler.Event](resp, s.events)
	ev := s.take(func(ev *scheduler.Event) bool {
		return ev.Type == scheduler.Event_SUBSCRIBED || ev.Type == scheduler.Event_ERROR
	}, "SUBSCRIBED")
	if ev.Type == scheduler.Event_ERROR {
		t.Fatalf("framework of user %q (authenticated %v) refused: %s", user, authenticate, ev.Error.Message)
	}
	s.fwID = ev.Subscribed.FrameworkID.Value
	return s
}

// markerTask is a command task that writes its uid to marker, run as
// cmdUser when it is not empty.
func markerTask(id, marker, cmdUser string) func(mesos.Offer) mesos.TaskInfo {
	return func(o mesos.Offer) mesos.TaskInfo {
		t := shellTask(id, "id -u > "+marker)(o)
		if cmdUser != "" {
			t.Command.User = proto.String(cmdUser)
		}
		return t
	}
}

// markerExecutorTask is a task whose own executor writes its uid to
// marker, the executor run as execUser (the framework's user if empty).
func markerExecutorTask(id, marker, execUser string) func(mesos.Offer) mesos.TaskInfo {
	var user *string
	if execUser != "" {
		user = proto.String(execUser)
	}
	return func(o mesos.Offer) mesos.TaskInfo {
		return mesos.TaskInfo{
			Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: o.AgentID,
			Resources: []mesos.Resource{resources.NewCPUs(0.1).Resource, resources.NewMemory(32).Resource},
			Executor: &mesos.ExecutorInfo{
				ExecutorID: mesos.ExecutorID{Value: "exec-" + id},
				Command:    &mesos.CommandInfo{Value: proto.String("id -u > " + marker), User: user},
				Resources:  []mesos.Resource{resources.NewCPUs(0.05).Resource, resources.NewMemory(16).Resource},
			},
		}
	}
}

// wantRefused checks that a task was refused for running as root and that
// its command never ran.
func wantRefused(t *testing.T, s *sched, id, marker string) {
	t.Helper()
	st := s.updateFor(id)
	if st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_UNAUTHORIZED || !strings.Contains(st.GetMessage(), agentproto.RootRefusal) {
		t.Errorf("%s: %s %s %q, want TASK_ERROR REASON_TASK_UNAUTHORIZED saying %q", id, st.GetState(), st.GetReason(), st.GetMessage(), agentproto.RootRefusal)
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: its marker %s exists (%v): the command ran", id, marker, err)
	}
}

// wantRanAsRoot checks that a task finished having written uid 0.
func wantRanAsRoot(t *testing.T, s *sched, id, marker string) {
	t.Helper()
	for {
		st := s.updateFor(id)
		if st.GetState() == mesos.TASK_FINISHED {
			break
		}
		if st.GetState() != mesos.TASK_STARTING && st.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("%s: %s %s %q, want it to run", id, st.GetState(), st.GetReason(), st.GetMessage())
		}
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("%s wrote %q (%v), want uid 0", id, b, err)
	}
}

// TestRootTasksNeedAuthenticatedFramework: a framework that did not
// authenticate runs nothing as root, even when its own user is www-data: a
// command task whose CommandInfo.user is root, and a task whose executor's
// CommandInfo.user is root, are refused by the agent with TASK_ERROR and
// the reason, and their commands never run, while its own tasks run as
// www-data; the same tasks of an
// authenticated framework run as uid 0, as does a root framework's task.
func TestRootTasksNeedAuthenticatedFramework(t *testing.T) {
	c := startRootPolicyCluster(t, false)
	dir := t.TempDir()
	mark := func(name string) string { return filepath.Join(dir, name) }

	www := subscribeAs(t, c.masterURL, "www-data", false)
	www.launch(markerTask("cmd-root", mark("cmd-root"), "root"), markerExecutorTask("exec-root", mark("exec-root"), "root"),
		markerExecutorTask("www", "uid", ""))
	wantRefused(t, www, "cmd-root", mark("cmd-root"))
	wantRefused(t, www, "exec-root", mark("exec-root"))
	// Its own executor runs, as www-data (it writes its uid in its
	// sandbox; the test binary is not www-data's to run).
	u, err := user.Lookup("www-data")
	if err != nil {
		t.Fatal(err)
	}
	uidFile := filepath.Join(c.sandbox("exec-www"), "uid")
	var b []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err = os.ReadFile(uidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			break
		}
	}
	if strings.TrimSpace(string(b)) != u.Uid {
		t.Errorf("www's executor ran as uid %q (%v), want www-data's %s", b, err, u.Uid)
	}
	www.cancel()

	auth := subscribeAs(t, c.masterURL, "www-data", true)
	auth.launch(markerTask("auth-cmd-root", mark("auth-cmd-root"), "root"))
	wantRanAsRoot(t, auth, "auth-cmd-root", mark("auth-cmd-root"))
	auth.cancel()

	root := subscribeAs(t, c.masterURL, "root", true)
	root.launch(markerTask("auth-root", mark("auth-root"), ""))
	wantRanAsRoot(t, root, "auth-root", mark("auth-root"))
}

// TestRootSubmissionsLetsTasksRunAsRoot: the operator's opt-in lets a
// framework that did not authenticate run tasks as root.
func TestRootSubmissionsLetsTasksRunAsRoot(t *testing.T) {
	c := startRootPolicyCluster(t, true)
	marker := filepath.Join(t.TempDir(), "marker")
	s := subscribeAs(t, c.masterURL, "root", false)
	s.launch(markerTask("root-1", marker, ""))
	wantRanAsRoot(t, s, "root-1", marker)
}

// fakeMaster speaks the master's side of the internal agent protocol:
// it sends REGISTERED, then the launches on its queue, and records the
// status updates the agent reports.
type fakeMaster struct {
	launches chan agentproto.Command
	mu       sync.Mutex
	updates  []agentproto.Update
}

func (f *fakeMaster) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentproto.SubscribePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rw := recordio.NewWriter(w)
		write := func(c agentproto.Command) bool {
			b, _ := json.Marshal(c)
			return rw.WriteFrame(b) == nil && rc.Flush() == nil
		}
		if !write(agentproto.Command{Type: agentproto.CmdRegistered, AgentID: "fake-agent-S0"}) {
			return
		}
		for {
			select {
			case c := <-f.launches:
				if !write(c) {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("POST "+agentproto.UpdatePath, func(w http.ResponseWriter, r *http.Request) {
		var u agentproto.Update
		if err := json.NewDecoder(bufio.NewReader(r.Body)).Decode(&u); err == nil {
			f.mu.Lock()
			f.updates = append(f.updates, u)
			f.mu.Unlock()
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	return mux
}

func (f *fakeMaster) update(task string) (agentproto.Update, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.updates {
		if u.Status.TaskID.Value == task {
			return u, true
		}
	}
	return agentproto.Update{}, false
}

// TestAgentRefusesRootWithoutMastersWord: the agent itself refuses a task
// that would run as root when the master's launch does not allow it,
// whatever the master let through: a framework of user root, one with no
// user (the agent's own, root), and a task that would join an executor
// already running as root. Nothing runs.
func TestAgentRefusesRootWithoutMastersWord(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root agent runs tasks as root")
	}
	f := &fakeMaster{launches: make(chan agentproto.Command, 10)}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	startAgent(t, srv.URL)
	dir := t.TempDir()
	offer := mesos.Offer{AgentID: mesos.AgentID{Value: "fake-agent-S0"}}
	for _, user := range []string{"root", ""} {
		id := "task-of-" + user + "-user"
		marker := filepath.Join(dir, id)
		fw := &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "fw-" + user}, User: user, Name: "fake"}
		f.launches <- agentproto.Command{Type: agentproto.CmdLaunch, Framework: fw, FrameworkID: fw.ID.Value,
			Tasks: []mesos.TaskInfo{markerTask(id, marker, "")(offer)}}
		deadline := time.Now().Add(20 * time.Second)
		var u agentproto.Update
		var ok bool
		for ; !ok && time.Now().Before(deadline); u, ok = f.update(id) {
			time.Sleep(20 * time.Millisecond)
		}
		st := u.Status
		if !ok || st.GetState() != mesos.TASK_ERROR || st.GetReason() != mesos.REASON_TASK_UNAUTHORIZED || !strings.Contains(st.GetMessage(), agentproto.RootRefusal) {
			t.Errorf("framework user %q: %v %s %s %q, want TASK_ERROR REASON_TASK_UNAUTHORIZED", user, ok, st.GetState(), st.GetReason(), st.GetMessage())
		}
		if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("framework user %q: the marker exists (%v): the command ran", user, err)
		}
	}

	// A task may not join an executor that already runs as root, whatever
	// user its own ExecutorInfo names.
	fw := &mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: "fw-join"}, User: "www-data", Name: "fake"}
	rootExec := markerExecutorTask("first", filepath.Join(dir, "first")+"; sleep 5", "root")(offer)
	f.launches <- agentproto.Command{Type: agentproto.CmdLaunch, Framework: fw, FrameworkID: fw.ID.Value, RootAllowed: true,
		Tasks: []mesos.TaskInfo{rootExec}}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "first")); err == nil {
			break
		}
	}
	join := markerExecutorTask("second", filepath.Join(dir, "second"), "www-data")(offer)
	join.Executor.ExecutorID = rootExec.Executor.ExecutorID
	f.launches <- agentproto.Command{Type: agentproto.CmdLaunch, Framework: fw, FrameworkID: fw.ID.Value, Tasks: []mesos.TaskInfo{join}}
	var u agentproto.Update
	var ok bool
	for deadline := time.Now().Add(20 * time.Second); !ok && time.Now().Before(deadline); u, ok = f.update("second") {
		time.Sleep(20 * time.Millisecond)
	}
	if st := u.Status; !ok || st.GetState() != mesos.TASK_ERROR || !strings.Contains(st.GetMessage(), "runs as root") {
		t.Errorf("a task joining a root executor: %v %s %q, want TASK_ERROR saying it runs as root", ok, st.GetState(), st.GetMessage())
	}
}
