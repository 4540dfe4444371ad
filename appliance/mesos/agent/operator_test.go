package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs/sandboxfstest"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentapi "github.com/mesos/mesos-go/api/v1/lib/agent"
	acalls "github.com/mesos/mesos-go/api/v1/lib/agent/calls"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpagent"
)

var codecMedia = []encoding.MediaType{codecs.MediaTypeJSON, codecs.MediaTypeProtobuf}

// operator is mesos-go's v1 agent API client for c's agent, in one codec.
type operator struct {
	t    *testing.T
	send acalls.Sender
}

func newOperator(t *testing.T, agentURL string, media encoding.MediaType) *operator {
	cli := httpcli.New(httpcli.Endpoint(agentURL+"/api/v1"), httpcli.Codec(codecs.ByMediaType[media]))
	return &operator{t: t, send: httpagent.NewSender(cli.Send)}
}

// call sends a call and decodes its answer; it fails the test on an error
// unless the caller asks for it (try).
func (o *operator) call(c *agentapi.Call) *agentapi.Response {
	o.t.Helper()
	r, err := o.try(c)
	if err != nil {
		o.t.Fatalf("%s: %v", c.GetType(), err)
	}
	if r.GetType().String() != c.GetType().String() {
		o.t.Fatalf("%s answered with a %s response", c.GetType(), r.GetType())
	}
	return r
}

func (o *operator) try(c *agentapi.Call) (*agentapi.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := o.send.Send(ctx, acalls.NonStreaming(c))
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	var r agentapi.Response
	if err := resp.Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// failsWith sends a call that must fail with the HTTP status code (any 4xx
// for anyClientError) and a message holding want, within 10 seconds.
func (o *operator) failsWith(c *agentapi.Call, code apierrors.Code, want string) {
	o.t.Helper()
	r, err := o.try(c)
	if code == anyClientError {
		for n := apierrors.Code(400); n < 500; n++ {
			if n.Matches(err) {
				code = n
			}
		}
	}
	switch {
	case err == nil:
		o.t.Errorf("%s %s: answered with %d entries and %d bytes, want an error %d", c.GetType(), callPath(c),
			len(r.GetListFiles().GetFileInfos()), len(r.GetReadFile().GetData()), code)
	case errors.Is(err, context.DeadlineExceeded):
		o.t.Errorf("%s %s: no answer within 10s (blocked?)", c.GetType(), callPath(c))
	case !code.Matches(err) || !strings.Contains(err.Error(), want):
		o.t.Errorf("%s %s: %v, want %d with %q", c.GetType(), callPath(c), err, code, want)
	case strings.Contains(err.Error(), sandboxfstest.Secret) || strings.Contains(err.Error(), "root:"):
		o.t.Errorf("%s %s: the error shows what is outside the sandbox: %v", c.GetType(), callPath(c), err)
	default:
		o.t.Logf("%s %s: %v", c.GetType(), callPath(c), err)
	}
}

const anyClientError apierrors.Code = -1

func callPath(c *agentapi.Call) string {
	if c.ListFiles != nil {
		return c.ListFiles.Path
	}
	return c.GetReadFile().GetPath()
}

func findTask(ts []mesos.Task, id string) *mesos.Task {
	for i := range ts {
		if ts[i].TaskID.Value == id {
			return &ts[i]
		}
	}
	return nil
}

// executorIDs are the executor ids of a GET_EXECUTORS list.
func executorIDs(es []agentapi.Response_GetExecutors_Executor) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ExecutorInfo.ExecutorID.Value)
	}
	return ids
}

// opCluster runs an agent with a running task ("op-running", which wrote
// "op-out\n" to its stdout) and a finished one ("op-done").
func opCluster(t *testing.T, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	opts = append([]func(*agent.Config){func(cfg *agent.Config) { cfg.BuildVersion = "v-test-build" }}, opts...)
	c := startCluster(t, opts...)
	c.sched.launch(shellTask("op-running", "echo op-out; mkdir sub; exec sleep 600"), shellTask("op-done", "true"))
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING} {
		if st := c.sched.updateFor("op-running"); st.GetState() != want {
			t.Fatalf("op-running: %s (%s), want %s", st.GetState(), st.GetMessage(), want)
		}
	}
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		if st := c.sched.updateFor("op-done"); st.GetState() != want {
			t.Fatalf("op-done: %s (%s), want %s", st.GetState(), st.GetMessage(), want)
		}
	}
	// op-done's executor has exited, and the running task's output is in
	// its sandbox.
	stdout := filepath.Join(c.sandbox("op-running"), "stdout")
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(stdout)
		if bytes.Contains(b, []byte("op-out\n")) && c.executorCompleted("op-done") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("op-running's stdout holds %q, op-done's executor completed: %v", b, c.executorCompleted("op-done"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// executorCompleted tells whether /state lists the executor as completed.
func (c *cluster) executorCompleted(id string) bool {
	for _, fw := range c.state()["frameworks"].([]any) {
		for _, ex := range fw.(map[string]any)["completed_executors"].([]any) {
			if ex.(map[string]any)["id"] == id {
				return true
			}
		}
	}
	return false
}

// Every read-only call of Mesos' v1 agent API is answered, in JSON and in
// protobuf, through mesos-go's httpagent client, with what the agent runs.
func TestOperatorAPI(t *testing.T) {
	c := opCluster(t)
	sandbox := c.sandbox("op-running")
	var containerID string
	for _, fw := range c.state()["frameworks"].([]any) {
		for _, ex := range fw.(map[string]any)["executors"].([]any) {
			if e := ex.(map[string]any); e["id"] == "op-running" {
				containerID = e["container"].(string)
			}
		}
	}
	for _, media := range codecMedia {
		t.Run(string(media), func(t *testing.T) {
			op := newOperator(t, c.agentURL, media)

			if r := op.call(acalls.GetHealth()); !r.GetGetHealth().GetHealthy() {
				t.Errorf("GET_HEALTH: %v, want healthy", r.GetHealth)
			}

			flags := map[string]string{}
			for _, f := range op.call(acalls.GetFlags()).GetGetFlags().GetFlags() {
				flags[f.Name] = f.GetValue()
			}
			for name, want := range map[string]string{
				"work_dir": c.workDir, "hostname": "127.0.0.1", "gc_delay": "1weeks", "gc_disk_headroom": "0.1",
				"disk_watch_interval": "1mins", "executor_shutdown_grace_period": "1secs", "master": c.masterURL,
				"attributes": "rack:r1;host:h1", "recovery_timeout": "15mins",
			} {
				if flags[name] != want {
					t.Errorf("GET_FLAGS %s = %q, want %q", name, flags[name], want)
				}
			}
			if !strings.HasPrefix(flags["resources"], "cpus:2;mem:1024;disk:1024;ports:[") {
				t.Errorf("GET_FLAGS resources = %q, want the agent's resources", flags["resources"])
			}

			v := op.call(acalls.GetVersion()).GetGetVersion().GetVersionInfo()
			if v.Version != mesosutil.MesosAPIVersion || v.GetGitTag() != "v-test-build" || v.GetBuildUser() != "aurorabox" {
				t.Errorf("GET_VERSION: %+v, want %s built as v-test-build", v, mesosutil.MesosAPIVersion)
			}

			checkTasks := func(call string, ts *agentapi.Response_GetTasks) {
				t.Helper()
				run := findTask(ts.GetLaunchedTasks(), "op-running")
				if run == nil || run.GetState() != mesos.TASK_RUNNING || run.FrameworkID.Value != c.sched.fwID ||
					run.GetExecutorID().GetValue() != "op-running" || run.AgentID.Value == "" || len(run.Resources) == 0 {
					t.Errorf("%s: op-running launched as %+v, want RUNNING in framework %s", call, run, c.sched.fwID)
				}
				done := findTask(ts.GetCompletedTasks(), "op-done")
				if done == nil {
					done = findTask(ts.GetTerminatedTasks(), "op-done") // its acknowledgement may be on its way
				}
				if done == nil || done.GetState() != mesos.TASK_FINISHED {
					t.Errorf("%s: op-done is %+v, want FINISHED among the completed or terminated tasks", call, done)
				}
				if n := len(ts.GetPendingTasks()) + len(ts.GetQueuedTasks()); n != 0 {
					t.Errorf("%s: %d pending or queued tasks, want none", call, n)
				}
			}
			checkExecutors := func(call string, es *agentapi.Response_GetExecutors) {
				t.Helper()
				live, done := executorIDs(es.GetExecutors()), executorIDs(es.GetCompletedExecutors())
				if !slices.Contains(live, "op-running") || !slices.Contains(done, "op-done") || slices.Contains(live, "op-done") {
					t.Errorf("%s: executors %v, completed %v; want op-running live and op-done completed", call, live, done)
				}
				for _, e := range es.GetExecutors() {
					if e.ExecutorInfo.GetFrameworkID().GetValue() != c.sched.fwID {
						t.Errorf("%s: executor %s has framework_id %q, want %s", call, e.ExecutorInfo.ExecutorID.Value, e.ExecutorInfo.GetFrameworkID().GetValue(), c.sched.fwID)
					}
				}
			}
			checkFrameworks := func(call string, fs *agentapi.Response_GetFrameworks) {
				t.Helper()
				if f := fs.GetFrameworks(); len(f) != 1 || f[0].FrameworkInfo.GetID().GetValue() != c.sched.fwID || f[0].FrameworkInfo.Name != "test" {
					t.Errorf("%s: frameworks %+v, want the one of framework %s", call, f, c.sched.fwID)
				}
			}
			st := op.call(acalls.GetState()).GetGetState()
			checkTasks("GET_STATE", st.GetGetTasks())
			checkExecutors("GET_STATE", st.GetGetExecutors())
			checkFrameworks("GET_STATE", st.GetGetFrameworks())
			checkTasks("GET_TASKS", op.call(acalls.GetTasks()).GetGetTasks())
			checkExecutors("GET_EXECUTORS", op.call(acalls.GetExecutors()).GetGetExecutors())
			checkFrameworks("GET_FRAMEWORKS", op.call(acalls.GetFrameworks()).GetGetFrameworks())

			var found bool
			for _, ct := range op.call(acalls.GetContainers()).GetGetContainers().GetContainers() {
				if ct.GetExecutorID().GetValue() == "op-done" {
					t.Errorf("GET_CONTAINERS lists the terminated executor op-done: %+v", ct)
				}
				if ct.GetExecutorID().GetValue() != "op-running" {
					continue
				}
				found = true
				stats := ct.GetResourceStatistics()
				if ct.ContainerID.Value != containerID || ct.GetFrameworkID().GetValue() != c.sched.fwID ||
					ct.GetExecutorName() == "" || stats.GetCPUsLimit() <= 0 || stats.GetMemLimitBytes() == 0 || stats.Timestamp == 0 ||
					ct.GetContainerStatus().GetExecutorPID() == 0 {
					t.Errorf("GET_CONTAINERS: %+v, want container %s of framework %s with its limits and pid", ct, containerID, c.sched.fwID)
				}
			}
			if !found {
				t.Error("GET_CONTAINERS does not list op-running's container")
			}

			var names []string
			for _, fi := range op.call(acalls.ListFiles(sandbox)).GetListFiles().GetFileInfos() {
				names = append(names, filepath.Base(fi.Path))
				if fi.Path == filepath.Join(sandbox, "stdout") && (fi.GetSize_() != uint64(len("op-out\n")) || fi.GetMode()&0o170000 != 0o100000 || fi.GetMtime() == nil) {
					t.Errorf("LIST_FILES: stdout is %+v, want a regular file of %d bytes", fi, len("op-out\n"))
				}
				if fi.Path == filepath.Join(sandbox, "sub") && fi.GetMode()&0o170000 != 0o040000 {
					t.Errorf("LIST_FILES: sub has mode %o, want a directory", fi.GetMode())
				}
			}
			if !slices.Contains(names, "stdout") || !slices.Contains(names, "stderr") || !slices.Contains(names, "sub") {
				t.Errorf("LIST_FILES %s: %v, want stdout, stderr and sub", sandbox, names)
			}
			// Through the agent's `latest` link, as Mesos' sandbox paths go.
			latest := filepath.Join(filepath.Dir(sandbox), "latest")
			if n := len(op.call(acalls.ListFiles(latest)).GetListFiles().GetFileInfos()); n != len(names) {
				t.Errorf("LIST_FILES %s: %d entries, want %d", latest, n, len(names))
			}

			stdout := filepath.Join(sandbox, "stdout")
			rf := op.call(acalls.ReadFile(stdout, 0)).GetReadFile()
			if rf.GetSize_() != 7 || string(rf.GetData()) != "op-out\n" {
				t.Errorf("READ_FILE %s: size %d data %q, want 7 and %q", stdout, rf.GetSize_(), rf.GetData(), "op-out\n")
			}
			rf = op.call(acalls.ReadFileWithLength(stdout, 3, 2)).GetReadFile()
			if rf.GetSize_() != 7 || string(rf.GetData()) != "ou" {
				t.Errorf("READ_FILE %s offset 3 length 2: size %d data %q, want 7 and \"ou\"", stdout, rf.GetSize_(), rf.GetData())
			}
			rf = op.call(acalls.ReadFile(stdout, 100)).GetReadFile()
			if rf.GetSize_() != 7 || len(rf.GetData()) != 0 {
				t.Errorf("READ_FILE %s past its end: size %d data %q, want 7 and nothing", stdout, rf.GetSize_(), rf.GetData())
			}

			// Calls that would change something are refused, by name.
			for _, call := range []*agentapi.Call{
				acalls.LaunchNestedContainer(mesos.ContainerID{Value: "x", Parent: &mesos.ContainerID{Value: containerID}}, &mesos.CommandInfo{}, nil),
				acalls.KillNestedContainer(mesos.ContainerID{Value: containerID}),
				acalls.SetLoggingLevel(2, time.Minute),
				acalls.AttachContainerOutput(mesos.ContainerID{Value: containerID}),
				acalls.GetMetrics(nil),
			} {
				_, err := op.try(call)
				if !apierrors.Code(http.StatusNotImplemented).Matches(err) || (err == nil || !strings.Contains(err.Error(), call.GetType().String()+" is not supported")) {
					t.Errorf("%s: %v, want 501 naming it as unsupported", call.GetType(), err)
				}
			}
		})
	}
	// The task still runs: nothing above touched it.
	if ex := executorIDs(newOperator(t, c.agentURL, codecs.MediaTypeJSON).call(acalls.GetExecutors()).GetGetExecutors().GetExecutors()); !slices.Contains(ex, "op-running") {
		t.Errorf("op-running is gone after the calls: executors %v", ex)
	}
}

// LIST_FILES and READ_FILE are confined as /files is: `..` out of the
// sandboxes is not found, and a symlink to /etc/shadow or /etc, a FIFO, a
// socket or a device in a sandbox is refused at once, in both codecs.
func TestOperatorFilesHostile(t *testing.T) {
	c := opCluster(t)
	dir := c.sandbox("op-running")
	for name, target := range map[string]string{"shadow": "/etc/shadow", "etc": "/etc", "up": "../../../../../../../.."} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	specials := sandboxfstest.Specials(t, dir)
	for _, media := range codecMedia {
		t.Run(string(media), func(t *testing.T) {
			op := newOperator(t, c.agentURL, media)
			// `..` is resolved on the path first: out of the sandboxes, it is not found.
			for _, p := range []string{
				dir + "/../../../../../../../../../etc/shadow",
				dir + "/..",
				filepath.Dir(c.workDir) + "/" + filepath.Base(c.workDir) + "/../../etc/shadow",
				"/etc/shadow", "/etc", c.workDir, filepath.Join(c.workDir, "meta"),
			} {
				op.failsWith(acalls.ReadFile(p, 0), apierrors.CodeNotFound, "not in any sandbox")
				op.failsWith(acalls.ListFiles(p), apierrors.CodeNotFound, "not in any sandbox")
			}
			// Symlinks out of the sandbox are not followed.
			for _, name := range []string{"shadow", "up/etc/shadow", "etc/shadow"} {
				op.failsWith(acalls.ReadFile(filepath.Join(dir, name), 0), apierrors.CodeUnsubscribed, "outside the sandbox")
			}
			for _, name := range []string{"etc", "up"} {
				op.failsWith(acalls.ListFiles(filepath.Join(dir, name)), apierrors.CodeUnsubscribed, "outside the sandbox")
			}
			// Special files are refused at once, never opened for reading.
			for _, kind := range []string{"fifo", "socket"} {
				p := filepath.Join(dir, specials[kind])
				op.failsWith(acalls.ReadFile(p, 0), apierrors.CodeMalformedRequest, sandboxfs.ErrNotRegular.Error())
				op.failsWith(acalls.ListFiles(p), apierrors.CodeMalformedRequest, sandboxfs.ErrNotDir.Error())
			}
			// A device node where the test may make one, else a symlink to /dev/null.
			op.failsWith(acalls.ReadFile(filepath.Join(dir, specials["device"]), 0), anyClientError, "")
			op.failsWith(acalls.ListFiles(filepath.Join(dir, specials["device"])), anyClientError, "")
			op.failsWith(acalls.ReadFile(filepath.Join(dir, "sub"), 0), apierrors.CodeMalformedRequest, sandboxfs.ErrNotRegular.Error())
			op.failsWith(acalls.ListFiles(filepath.Join(dir, "stdout")), apierrors.CodeMalformedRequest, sandboxfs.ErrNotDir.Error())
			op.failsWith(acalls.ReadFile("relative/stdout", 0), apierrors.CodeMalformedRequest, "absolute")
			op.failsWith(acalls.ListFiles(""), apierrors.CodeMalformedRequest, "absolute")
		})
	}
}

// LIST_FILES and READ_FILE count against the client's /files bound: over
// it they get 429 at once, while the calls that read no sandbox are served.
func TestOperatorFilesConcurrencyBound(t *testing.T) {
	lim := sandboxfs.NewLimiter(2, 10)
	c := opCluster(t, func(cfg *agent.Config) { cfg.FilesLimiter = lim })
	dir := c.sandbox("op-running")
	var releases []func()
	for range 2 {
		release, _, _ := lim.Acquire(&http.Request{RemoteAddr: "127.0.0.1:1"})
		if release == nil {
			t.Fatal("could not take a slot")
		}
		releases = append(releases, release)
	}
	op := newOperator(t, c.agentURL, codecs.MediaTypeProtobuf)
	op.failsWith(acalls.ReadFile(filepath.Join(dir, "stdout"), 0), apierrors.CodeRateLimitExceeded, "at most 2")
	op.failsWith(acalls.ListFiles(dir), apierrors.CodeRateLimitExceeded, "at most 2")
	op.call(acalls.GetHealth())
	releases[0]()
	if got := string(op.call(acalls.ReadFile(filepath.Join(dir, "stdout"), 0)).GetReadFile().GetData()); got != "op-out\n" {
		t.Errorf("after a slot was freed: READ_FILE read %q", got)
	}
	releases[1]()
}

// The v1 API checks its request as Mesos does: POST, a JSON or protobuf
// body of bounded size, an acceptable answer type, and a call type.
func TestOperatorAPIRequests(t *testing.T) {
	c := startMasterAndAgent(t)
	post := func(contentType, accept string, body []byte) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.agentURL+"/api/v1", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	health, _ := json.Marshal(acalls.GetHealth())
	healthPB, _ := acalls.GetHealth().Marshal()
	for _, tc := range []struct {
		name, contentType, accept string
		body                      []byte
		code                      int
		want                      string
	}{
		{"json", "application/json", "", health, 200, `"get_health":{"healthy":`},
		{"json, answered in protobuf", "application/json", "application/x-protobuf", health, 200, ""},
		{"protobuf, answered in json", "application/x-protobuf", "application/json", healthPB, 200, `"type":"GET_HEALTH"`},
		{"no content type", "", "", health, 415, "Content-Type"},
		{"text", "text/plain", "", health, 415, "Content-Type"},
		{"unacceptable answer", "application/json", "text/html", health, 406, "Accept"},
		{"not json", "application/json", "", []byte("{"), 400, "Failed to parse body into Call"},
		{"no type", "application/json", "", []byte("{}"), 400, "Expecting 'type' to be present"},
		{"no list_files", "application/json", "", []byte(`{"type":"LIST_FILES"}`), 400, "list_files"},
		{"no read_file", "application/json", "", []byte(`{"type":"READ_FILE"}`), 400, "read_file"},
		{"too large", "application/json", "", bytes.Repeat([]byte(" "), 1<<20), 413, "larger than"},
	} {
		code, ct, body := post(tc.contentType, tc.accept, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
		if code == 200 {
			want := tc.accept
			if want == "" {
				want = tc.contentType
			}
			if ct != want {
				t.Errorf("%s: answered as %s, want %s", tc.name, ct, want)
			}
			var r agentapi.Response
			if err := mesosutil.Decode(ct, []byte(body), &r); err != nil || r.GetType() != agentapi.Response_GET_HEALTH {
				t.Errorf("%s: answer %q does not decode as GET_HEALTH: %v", tc.name, body, err)
			}
		}
	}
	resp, err := http.Get(c.agentURL + "/api/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /api/v1: %d Allow %q, want 405 and POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// /slave(1)/api/v1 is the same API.
	op := newOperator(t, c.agentURL+"/slave(1)", codecs.MediaTypeJSON)
	op.call(acalls.GetHealth())
}

// /flags (and /slave(1)/flags) is Mesos' {"flags": {...}} with the agent's
// real settings, the ones /state shows too.
func TestFlagsEndpoint(t *testing.T) {
	c := startMasterAndAgent(t, func(cfg *agent.Config) {
		cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskWatchInterval = 36*time.Hour, 0.25, 90*time.Second
	})
	for _, path := range []string{"/flags", "/slave(1)/flags"} {
		code, body := c.get(path, nil)
		var doc struct {
			Flags map[string]string `json:"flags"`
		}
		if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
			t.Fatalf("%s: %d %s (%v)", path, code, body, err)
		}
		for name, want := range map[string]string{
			"work_dir": c.workDir, "gc_delay": "1.5days", "gc_disk_headroom": "0.25", "disk_watch_interval": "1.5mins",
			"executor_shutdown_grace_period": "1secs", "executor_registration_timeout": "1mins", "hostname": "127.0.0.1",
			"attributes": "rack:r1;host:h1", "recover": "reconnect", "cgroups_enable_cfs": "false",
		} {
			if doc.Flags[name] != want {
				t.Errorf("%s: %s = %q, want %q", path, name, doc.Flags[name], want)
			}
		}
		if !strings.HasPrefix(doc.Flags["resources"], "cpus:2;mem:1024;disk:1024;ports:[") {
			t.Errorf("%s: resources = %q", path, doc.Flags["resources"])
		}
	}
	if got := c.state()["flags"].(map[string]any)["gc_delay"]; got != "1.5days" {
		t.Errorf("/state flags gc_delay = %v, want 1.5days", got)
	}
}

// A task swapping a directory of its sandbox for a symlink to one outside,
// in a loop, never gets a file or a listing from outside through READ_FILE
// or LIST_FILES. 1000 calls, four at a time, in both codecs.
func TestOperatorFilesSymlinkSwapRace(t *testing.T) {
	c := opCluster(t)
	dir := c.sandbox("op-running")
	sw := sandboxfstest.Swap(t, dir, "d")
	calls := []*agentapi.Call{
		acalls.ReadFile(filepath.Join(dir, "d", "f"), 0),
		acalls.ReadFile(filepath.Join(dir, "d", sandboxfstest.Secret), 0),
		acalls.ListFiles(filepath.Join(dir, "d")),
	}
	const n, workers = 1000, 4
	var (
		mu            sync.Mutex
		served, leaks int
		wg            sync.WaitGroup
	)
	for w := range workers {
		op := newOperator(t, c.agentURL, codecMedia[w%len(codecMedia)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				call := calls[i%len(calls)]
				r, err := op.try(call)
				var got string // what was served: a file's data, or a listing's paths
				if err == nil {
					got = string(r.GetReadFile().GetData())
					for _, fi := range r.GetListFiles().GetFileInfos() {
						got += fi.Path + "\n"
					}
				}
				mu.Lock()
				if strings.Contains(got, sandboxfstest.Secret+"\n") || strings.Contains(got, "/"+sandboxfstest.Secret) {
					if leaks++; leaks == 1 {
						t.Errorf("%s %s served what is outside the sandbox: %q", call.GetType(), callPath(call), got)
					}
				}
				if err == nil {
					served++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sw.Stop()
	t.Logf("%d calls, %d swaps, %d served from inside, %d leaks", n, sw.Swaps.Load(), served, leaks)
	if served == 0 {
		t.Error("no call was served: the race was never open")
	}
}

// A finished task is among GET_TASKS' terminated_tasks until its framework
// acknowledges its terminal update, and among completed_tasks after.
func TestOperatorTerminatedTasks(t *testing.T) {
	c := startCluster(t)
	c.sched.launch(shellTask("unacked", "true"))
	op := newOperator(t, c.agentURL, codecs.MediaTypeProtobuf)
	// The scheduler reads no update yet, so acknowledges none.
	await := func(what string, where func(*agentapi.Response_GetTasks) []mesos.Task) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ts := op.call(acalls.GetTasks()).GetGetTasks()
			if task := findTask(where(ts), "unacked"); task != nil && task.GetState() == mesos.TASK_FINISHED {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("unacked is not FINISHED among the %s tasks: %+v", what, ts)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	await("terminated", (*agentapi.Response_GetTasks).GetTerminatedTasks)
	if ts := op.call(acalls.GetTasks()).GetGetTasks(); findTask(ts.GetCompletedTasks(), "unacked") != nil {
		t.Errorf("unacked is completed before its update was acknowledged: %+v", ts)
	}
	for _, want := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
		if st := c.sched.updateFor("unacked"); st.GetState() != want {
			t.Fatalf("unacked: %s, want %s", st.GetState(), want)
		}
	}
	await("completed", (*agentapi.Response_GetTasks).GetCompletedTasks)
}
