package ui

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.html with the rendered pages")

// now is the fake clock of every test.
var now = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// ago is a TaskEvent timestamp d before now.
func ago(d time.Duration) int64 { return now.Add(-d).UnixMilli() }

// fakeSource is a Source over fixed jobs, tasks and updates.
type fakeSource struct {
	jobs    []api.JobConfiguration
	tasks   []api.ScheduledTask
	updates []api.JobUpdateDetails // newest first
}

func (f *fakeSource) JobUpdateSummaries(q api.JobUpdateQuery) ([]api.JobUpdateSummary, error) {
	var out []api.JobUpdateSummary
	for _, d := range f.updates {
		if q.JobKey == nil || *q.JobKey == d.Update.Summary.Key.Job {
			out = append(out, d.Update.Summary)
		}
	}
	return out, nil
}

func (f *fakeSource) UpdateDetails(key api.JobUpdateKey) (api.JobUpdateDetails, bool) {
	for _, d := range f.updates {
		if d.Update.Summary.Key == key {
			return d, true
		}
	}
	return api.JobUpdateDetails{}, false
}

func (f *fakeSource) Cluster() string { return "devcluster" }

func (f *fakeSource) CronTimezone() string { return "America/New_York" }

// CronJobs lists devel/hello (fired 2 minutes ago, next in 3) and a job
// whose schedule never fires, waiting for its kills.
func (f *fakeSource) CronJobs() []api.CronJob {
	return []api.CronJob{
		{Job: batch, CronSchedule: "0 0 31 2 *", CronCollisionPolicy: "KILL_EXISTING", InstanceCount: 2, ActiveTasks: 1, LaunchPending: true},
		{Job: helloDevel, CronSchedule: "*/5 * * * *", CronCollisionPolicy: "CANCEL_NEW", InstanceCount: 1,
			NextRunMs: now.Add(3 * time.Minute).UnixMilli(), LastFiredMs: ago(2 * time.Minute)},
	}
}

func (f *fakeSource) Jobs(role string) []api.JobConfiguration {
	var out []api.JobConfiguration
	for _, j := range f.jobs {
		if role == "" || j.Key.Role == role {
			out = append(out, j)
		}
	}
	return out
}

// JobSummaries counts as the scheduler does.
func (f *fakeSource) JobSummaries(role string) []api.JobSummary {
	var out []api.JobSummary
	for _, j := range f.Jobs(role) {
		s := api.JobSummary{Job: j}
		for _, t := range f.tasks {
			if t.AssignedTask.Task.Job != j.Key {
				continue
			}
			switch st, _ := state.ParseStatus(t.Status); {
			case st == state.Pending || st == state.Throttled:
				s.Stats.PendingTaskCount++
			case st.Active():
				s.Stats.ActiveTaskCount++
			case st == state.Finished:
				s.Stats.FinishedTaskCount++
			case st.Terminal():
				s.Stats.FailedTaskCount++
			}
		}
		out = append(out, s)
	}
	return out
}

func (f *fakeSource) Tasks(q api.TaskQuery) []api.ScheduledTask {
	var out []api.ScheduledTask
	for _, t := range f.tasks {
		if q.Matches(t) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].AssignedTask, out[j].AssignedTask
		if a.Task.Job != b.Task.Job {
			return a.Task.Job.String() < b.Task.Job.String()
		}
		if a.InstanceID != b.InstanceID {
			return a.InstanceID < b.InstanceID
		}
		return a.TaskID < b.TaskID
	})
	return out
}

func ptr[T any](v T) *T { return &v }

var (
	helloProd  = api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}
	helloDevel = api.JobKey{Role: "www-data", Environment: "devel", Name: "hello"}
	batch      = api.JobKey{Role: "alice", Environment: "test", Name: "batch"}
	gone       = api.JobKey{Role: "www-data", Environment: "prod", Name: "gone"}
)

// Task ids of the fixture.
const (
	idRunning  = "www-data-prod-hello-0-00000000-0000-4000-8000-000000000000"
	idFailed   = "www-data-prod-hello-1-11111111-1111-4111-8111-111111111111" // the first task of instance 1
	idKilled   = "www-data-prod-hello-1-22222222-2222-4222-8222-222222222222" // its replacement, with an ancestor
	idStarting = "www-data-prod-hello-1-33333333-3333-4333-8333-333333333333" // the current task of instance 1
	idPending  = "www-data-prod-hello-2-44444444-4444-4444-8444-444444444444"
	idCron     = "www-data-devel-hello-0-55555555-5555-4555-8555-555555555555"
	idGone     = "www-data-prod-gone-0-66666666-6666-4666-8666-666666666666"
)

const xssMessage = `<script>alert('x')</script>`

func taskConfig(k api.JobKey, service bool) api.TaskConfig {
	return api.TaskConfig{
		Job: k, Owner: api.Identity{User: k.Role}, IsService: service, MaxTaskFailures: 1, Tier: "preferred",
		Resources: []api.Resource{{NumCpus: ptr(0.5)}, {RAMMb: ptr(int64(128))}, {DiskMb: ptr(int64(256))},
			{NamedPort: ptr("http")}, {NamedPort: ptr("health")}},
		ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor",
			Data: `{"name":"hello","processes":[{"name":"web","cmdline":"echo <b>hi</b> && sleep 60"}]}`},
		NumCpus: 0.5, RAMMb: 128, DiskMb: 256,
	}
}

func task(k api.JobKey, id string, instance int, status, host string, events ...api.TaskEvent) api.ScheduledTask {
	t := api.ScheduledTask{
		AssignedTask: api.AssignedTask{TaskID: id, Task: taskConfig(k, true), InstanceID: instance, AssignedPorts: map[string]int{}},
		Status:       status,
		TaskEvents:   events,
	}
	if host != "" {
		t.AssignedTask.SlaveHost = host
		t.AssignedTask.SlaveID = "agent-id-" + host
	}
	return t
}

func ev(d time.Duration, status, msg string) api.TaskEvent {
	return api.TaskEvent{Timestamp: ago(d), Status: status, Message: msg, Scheduler: "scheduler-host"}
}

// fixture: role www-data with prod/hello (a 3-instance service: RUNNING,
// STARTING after a FAILED then KILLED task, PENDING), devel/hello (a cron
// job whose one task FINISHED) and prod/gone (no configuration, one KILLED
// task); role alice with test/batch (THROTTLED, LOST).
func fixture() *fakeSource {
	running := task(helloProd, idRunning, 0, "RUNNING", "agent-one",
		ev(10*time.Minute, "PENDING", ""), ev(9*time.Minute, "ASSIGNED", ""),
		ev(8*time.Minute, "STARTING", "Initializing sandbox."), ev(3*time.Minute, "RUNNING", "Health checks passed."))
	running.AssignedTask.AssignedPorts = map[string]int{"http": 31000, "health": 31001}

	failed := task(helloProd, idFailed, 1, "FAILED", "agent-two",
		ev(2*time.Hour, "PENDING", ""), ev(119*time.Minute, "ASSIGNED", ""), ev(118*time.Minute, "RUNNING", ""),
		ev(50*time.Minute, "FAILED", xssMessage))
	failed.FailureCount = 1
	killed := task(helloProd, idKilled, 1, "KILLED", "agent-two",
		ev(50*time.Minute, "PENDING", "Rescheduled"), ev(49*time.Minute, "RUNNING", ""),
		ev(21*time.Minute, "KILLING", "Killed by restart"), ev(20*time.Minute, "KILLED", "Killed by restart"))
	killed.AncestorID, killed.FailureCount = idFailed, 1
	starting := task(helloProd, idStarting, 1, "STARTING", "agent-two",
		ev(20*time.Minute, "PENDING", "Rescheduled"), ev(30*time.Second, "STARTING", "Initializing sandbox."))
	starting.AncestorID, starting.FailureCount = idKilled, 1

	pending := task(helloProd, idPending, 2, "PENDING", "", ev(2*time.Hour, "PENDING", ""))

	cron := task(helloDevel, idCron, 0, "FINISHED", "agent-one",
		ev(49*time.Hour, "PENDING", ""), ev(48*time.Hour+time.Minute, "RUNNING", ""), ev(48*time.Hour, "FINISHED", "Task finished"))
	cron.AssignedTask.Task.IsService = false

	goneTask := task(gone, idGone, 0, "KILLED", "agent-one", ev(3*time.Hour, "KILLED", "Killed by alice"))

	throttled := task(batch, "alice-test-batch-0-77777777-7777-4777-8777-777777777777", 0, "THROTTLED", "",
		ev(time.Minute, "THROTTLED", "Rescheduled, penalized for 5000 ms for flapping"))
	lost := task(batch, "alice-test-batch-1-88888888-8888-4888-8888-888888888888", 1, "LOST", "agent-three",
		ev(5*time.Minute, "RUNNING", ""), ev(4*time.Minute, "LOST", "Agent agent-three removed"))

	prodCfg := api.JobConfiguration{Key: helloProd, Owner: api.Identity{User: "www-data"}, TaskConfig: taskConfig(helloProd, true), InstanceCount: 3}
	prodCfg.TaskConfig.ContactEmail = "ops@example.com"
	develCfg := api.JobConfiguration{Key: helloDevel, Owner: api.Identity{User: "www-data"}, TaskConfig: taskConfig(helloDevel, false),
		InstanceCount: 1, CronSchedule: "*/5 * * * *"}
	batchCfg := api.JobConfiguration{Key: batch, Owner: api.Identity{User: "alice"}, TaskConfig: taskConfig(batch, false), InstanceCount: 2}
	return &fakeSource{
		jobs:    []api.JobConfiguration{batchCfg, develCfg, prodCfg},
		tasks:   []api.ScheduledTask{running, failed, killed, starting, pending, cron, goneTask, throttled, lost},
		updates: []api.JobUpdateDetails{activeUpdate(), rolledBackUpdate()},
	}
}

// Update ids of the fixture.
const (
	idActiveUpdate     = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	idRolledBackUpdate = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
)

// activeUpdate is prod/hello going from three instances of its config to
// four of one with more CPU, in batches of two: instance 0 is updated, 1
// is updating, 2 and the new 3 are still to come.
func activeUpdate() api.JobUpdateDetails {
	next := taskConfig(helloProd, true)
	next.Resources[0] = api.Resource{NumCpus: ptr(0.75)}
	next.NumCpus = 0.75
	key := api.JobUpdateKey{Job: helloProd, ID: idActiveUpdate}
	return api.JobUpdateDetails{
		Update: api.JobUpdate{
			Summary: api.JobUpdateSummary{Key: key, User: "alice",
				State:    api.JobUpdateState{Status: "ROLLING_FORWARD", CreatedTimestampMs: ago(5 * time.Minute), LastModifiedTimestampMs: ago(time.Minute)},
				Metadata: []api.Metadata{{Key: "org.apache.aurora.client.update_id", Value: "c0ffee"}}},
			Instructions: api.JobUpdateInstructions{
				InitialState: []api.InstanceTaskConfig{{Task: taskConfig(helloProd, true), Instances: []api.Range{{First: 0, Last: 2}}}},
				DesiredState: &api.InstanceTaskConfig{Task: next, Instances: []api.Range{{First: 0, Last: 3}}},
				Settings: api.JobUpdateSettings{MaxPerInstanceFailures: 1, MinWaitInInstanceRunningMs: 30000, RollbackOnFailure: true,
					UpdateStrategy: &api.JobUpdateStrategy{BatchStrategy: &api.BatchJobUpdateStrategy{GroupSize: 2}}},
			},
		},
		UpdateEvents: []api.JobUpdateEvent{{Status: "ROLLING_FORWARD", TimestampMs: ago(5 * time.Minute), User: "alice", Message: "v2"}},
		InstanceEvents: []api.JobInstanceUpdateEvent{
			{InstanceID: 0, TimestampMs: ago(5 * time.Minute), Action: "INSTANCE_UPDATING"},
			{InstanceID: 1, TimestampMs: ago(5 * time.Minute), Action: "INSTANCE_UPDATING"},
			{InstanceID: 0, TimestampMs: ago(time.Minute), Action: "INSTANCE_UPDATED"},
		},
	}
}

// rolledBackUpdate is an earlier update of prod/hello that failed on
// instance 0 and was rolled back, with a message to escape.
func rolledBackUpdate() api.JobUpdateDetails {
	key := api.JobUpdateKey{Job: helloProd, ID: idRolledBackUpdate}
	cfg := taskConfig(helloProd, true)
	return api.JobUpdateDetails{
		Update: api.JobUpdate{
			Summary: api.JobUpdateSummary{Key: key, User: "bob",
				State: api.JobUpdateState{Status: "ROLLED_BACK", CreatedTimestampMs: ago(3 * time.Hour), LastModifiedTimestampMs: ago(170 * time.Minute)}},
			Instructions: api.JobUpdateInstructions{
				InitialState: []api.InstanceTaskConfig{{Task: cfg, Instances: []api.Range{{First: 0, Last: 1}}}},
				DesiredState: &api.InstanceTaskConfig{Task: cfg, Instances: []api.Range{{First: 0, Last: 0}}},
				Settings: api.JobUpdateSettings{RollbackOnFailure: true, BlockIfNoPulsesAfterMs: 60000,
					UpdateStrategy: &api.JobUpdateStrategy{VarBatchStrategy: &api.VariableBatchJobUpdateStrategy{GroupSizes: []int{1, 2}, AutopauseAfterBatch: true}}},
			},
		},
		UpdateEvents: []api.JobUpdateEvent{
			{Status: "ROLL_FORWARD_AWAITING_PULSE", TimestampMs: ago(3 * time.Hour), User: "bob"},
			{Status: "ROLLING_FORWARD", TimestampMs: ago(179 * time.Minute)},
			{Status: "ROLLING_BACK", TimestampMs: ago(175 * time.Minute), User: "bob", Message: xssMessage},
			{Status: "ROLLED_BACK", TimestampMs: ago(170 * time.Minute)},
		},
		InstanceEvents: []api.JobInstanceUpdateEvent{
			{InstanceID: 1, TimestampMs: ago(179 * time.Minute), Action: "INSTANCE_UPDATING"},
			{InstanceID: 1, TimestampMs: ago(176 * time.Minute), Action: "INSTANCE_UPDATE_FAILED"},
			{InstanceID: 1, TimestampMs: ago(175 * time.Minute), Action: "INSTANCE_ROLLING_BACK"},
			{InstanceID: 1, TimestampMs: ago(170 * time.Minute), Action: "INSTANCE_ROLLED_BACK"},
		},
	}
}

// observerURL gives agent-one and agent-three an observer, not agent-two.
func observerURL(host string) string {
	if host == "agent-two" {
		return ""
	}
	return "http://" + host + ":1338/"
}

func testHandler() http.Handler {
	return Handler(fixture(), Config{ObserverURL: observerURL, Now: func() time.Time { return now }})
}

func get(t *testing.T, h http.Handler, method, path string) (int, http.Header, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), string(body)
}

// TestGolden renders each route and compares the page with
// testdata/<name>.html (-update rewrites them).
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		name, path string
		code       int
	}{
		{"roles", "/scheduler", 200},
		{"role", "/scheduler/www-data", 200},
		{"environment", "/scheduler/www-data/prod", 200},
		{"job", "/scheduler/www-data/prod/hello", 200},
		{"job_noconfig", "/scheduler/www-data/prod/gone", 200},
		{"instance", "/scheduler/www-data/prod/hello/1", 200},
		{"task", "/scheduler/www-data/prod/hello/task/" + idKilled, 200},
		{"updates", "/updates", 200},
		{"cron", "/cronjobs", 200},
		{"update", "/scheduler/www-data/prod/hello/update/" + idActiveUpdate, 200},
		{"update_rolled_back", "/scheduler/www-data/prod/hello/update/" + idRolledBackUpdate, 200},
		{"bad_request", "/scheduler/www-data/pr%3Cod%3E", 400},
		{"not_found", "/scheduler/www-data/prod/nope", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := get(t, testHandler(), "GET", c.path)
			if code != c.code {
				t.Errorf("GET %s: status %d, want %d", c.path, code, c.code)
			}
			if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", c.path, ct)
			}
			file := filepath.Join("testdata", c.name+".html")
			if *update {
				if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if body != string(want) {
				t.Errorf("GET %s differs from %s (run with -update to rewrite, then review):\n%s", c.path, file, lineDiff(string(want), body))
			}
		})
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, wl, gl)
		}
	}
	return "(no difference)"
}

// rowRE matches a task row's marker.
var rowRE = regexp.MustCompile(`<tr class="(task|completed-task)" data-instance="(\d+)" data-status="([A-Z]+)" data-task-id="([^"]*)">(.*)</tr>`)

type row struct{ class, instance, status, id, cells string }

func rows(body string) []row {
	var out []row
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, row{m[1], m[2], m[3], m[4], m[5]})
	}
	return out
}

func TestJobPageTables(t *testing.T) {
	code, _, body := get(t, testHandler(), "GET", "/scheduler/www-data/prod/hello")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if !strings.Contains(body, `<body data-page="job">`) {
		t.Error("no data-page=job marker")
	}
	var active, completed []string
	for _, r := range rows(body) {
		// The instance id and the status are the cells' text too.
		if !strings.Contains(r.cells, `<td class="instance"><a href="/scheduler/www-data/prod/hello/`+r.instance+`">`+r.instance+`</a></td>`) {
			t.Errorf("row of %s: instance %s is not in the instance cell: %s", r.id, r.instance, r.cells)
		}
		class := map[string]string{"RUNNING": "status-active", "STARTING": "status-active", "PENDING": "status-pending",
			"FAILED": "status-failed", "KILLED": "status-failed"}[r.status]
		if !strings.Contains(r.cells, `<td class="status `+class+`">`+r.status+`</td>`) {
			t.Errorf("row of %s: no status cell %s with class %s: %s", r.id, r.status, class, r.cells)
		}
		s := r.instance + "=" + r.status
		if r.class == "task" {
			active = append(active, s)
		} else {
			completed = append(completed, s+"/"+r.id)
		}
	}
	if got, want := strings.Join(active, " "), "0=RUNNING 1=STARTING 2=PENDING"; got != want {
		t.Errorf("active rows %q, want %q", got, want)
	}
	// Newest first: the KILLED task ended 20m ago, the FAILED one 50m ago.
	if got, want := strings.Join(completed, " "), "1=KILLED/"+idKilled+" 1=FAILED/"+idFailed; got != want {
		t.Errorf("completed rows %q, want %q", got, want)
	}
	for _, want := range []string{
		`<tr data-field="instances"><th>Instances</th><td>3</td></tr>`,
		`<tr data-field="cpu"><th>CPU</th><td>0.5</td></tr>`,
		`<tr data-field="ram"><th>RAM</th><td>128 MB</td></tr>`,
		`<tr data-field="disk"><th>Disk</th><td>256 MB</td></tr>`,
		`<tr data-field="ports"><th>Ports</th><td>http, health</td></tr>`,
		`<tr data-field="isService"><th>Service</th><td>true</td></tr>`,
		`<tr data-field="tier"><th>Tier</th><td>preferred</td></tr>`,
		`<tr data-field="maxTaskFailures"><th>Max task failures</th><td>1</td></tr>`,
		// The RUNNING task's last change, in UTC and as an age.
		`<time datetime="2024-03-01T11:57:00Z">2024-03-01 11:57:00</time> <span class="age">(3m ago)</span>`,
		`<td class="message">Health checks passed.</td>`,
		`<a class="task-link" href="/scheduler/www-data/prod/hello/task/` + idRunning + `">`,
		`<nav class="breadcrumbs" id="breadcrumbs"><a href="/scheduler">devcluster</a> › <a href="/scheduler/www-data">www-data</a> › <a href="/scheduler/www-data/prod">prod</a> › <span class="current">hello</span></nav>`,
		`<span class="cluster" id="cluster">devcluster</span>`,
		`<title>Aurora</title>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("job page lacks %s", want)
		}
	}
}

func TestEscaping(t *testing.T) {
	h := testHandler()
	for _, path := range []string{"/scheduler/www-data/prod/hello", "/scheduler/www-data/prod/hello/1",
		"/scheduler/www-data/prod/hello/task/" + idFailed} {
		_, _, body := get(t, h, "GET", path)
		if strings.Contains(body, xssMessage) || strings.Contains(body, "<script") {
			t.Errorf("%s: the task message is not escaped", path)
		}
		if !strings.Contains(body, `<td class="message">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</td>`) {
			t.Errorf("%s: no escaped task message", path)
		}
	}
	_, _, body := get(t, h, "GET", "/scheduler/www-data/prod/hello/task/"+idFailed)
	if strings.Contains(body, "<b>hi</b>") || !strings.Contains(body, `echo &lt;b&gt;hi&lt;/b&gt; &amp;&amp; sleep 60`) {
		t.Error("the executor config is not escaped")
	}
}

func TestTaskPage(t *testing.T) {
	h := testHandler()
	_, _, body := get(t, h, "GET", "/scheduler/www-data/prod/hello/task/"+idRunning)
	for _, want := range []string{
		`<body data-page="task">`,
		`<tr data-field="taskId"><th>Task ID</th><td><code>` + idRunning + `</code></td></tr>`,
		`<tr data-field="slaveHost"><th>Host</th><td>agent-one</td></tr>`,
		`<tr data-field="slaveId"><th>Agent ID</th><td><code>agent-id-agent-one</code></td></tr>`,
		`<a class="port" data-port-name="health" href="http://agent-one:31001">health: 31001</a>, <a class="port" data-port-name="http" href="http://agent-one:31000">http: 31000</a>`,
		`<a class="observer-link" href="http://agent-one:1338/task/` + idRunning + `">`,
		`<tr class="event" data-status="PENDING"><td class="time"><time datetime="2024-03-01T11:50:00Z">2024-03-01 11:50:00</time> <span class="age">(10m ago)</span></td><td class="status status-pending">PENDING</td><td class="message"></td><td class="scheduler">scheduler-host</td></tr>`,
		"<pre id=\"executor-config\">{\n  &#34;name&#34;: &#34;hello&#34;,\n  &#34;processes&#34;: [\n",
		`<code id="executor-name">AuroraExecutor</code>`,
		`<span class="muted">none</span>`, // no ancestor
	} {
		if !strings.Contains(body, want) {
			t.Errorf("task page lacks %s", want)
		}
	}
	if n := strings.Count(body, `<tr class="event"`); n != 4 {
		t.Errorf("%d events, want 4", n)
	}
	// The replacement task links to its ancestor.
	_, _, body = get(t, h, "GET", "/scheduler/www-data/prod/hello/task/"+idKilled)
	if want := `<a class="ancestor-link" href="/scheduler/www-data/prod/hello/task/` + idFailed + `"><code>` + idFailed + `</code></a>`; !strings.Contains(body, want) {
		t.Errorf("task page lacks the ancestor link %s", want)
	}
	// A task without a host has ports without links (and no observer).
	src := fixture()
	src.tasks[4].AssignedTask.AssignedPorts = map[string]int{"http": 31002}
	_, _, body = get(t, Handler(src, Config{ObserverURL: observerURL}), "GET", "/scheduler/www-data/prod/hello/task/"+idPending)
	if !strings.Contains(body, `<span class="port" data-port-name="http">http: 31002</span>`) || strings.Contains(body, "observer-link") {
		t.Error("a pending task's port is linked, or it has an observer link")
	}
}

func TestRolesAndJobs(t *testing.T) {
	h := testHandler()
	_, _, body := get(t, h, "GET", "/scheduler")
	for _, want := range []string{
		`<tr class="role" data-role="alice"><td><a href="/scheduler/alice">alice</a></td><td class="count jobs">1</td><td class="count cron">0</td></tr>`,
		`<tr class="role" data-role="www-data"><td><a href="/scheduler/www-data">www-data</a></td><td class="count jobs">1</td><td class="count cron">1</td></tr>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("roles page lacks %s", want)
		}
	}
	_, _, body = get(t, h, "GET", "/scheduler/www-data/")
	envs := regexp.MustCompile(`<section class="environment" data-environment="([^"]+)">`).FindAllStringSubmatch(body, -1)
	if len(envs) != 2 || envs[0][1] != "devel" || envs[1][1] != "prod" {
		t.Errorf("role page environments %v, want devel, prod", envs)
	}
	want := `<tr class="job" data-job="hello"><td><a href="/scheduler/www-data/prod/hello">hello</a></td><td class="count instances">3</td><td class="count pending">1</td><td class="count active">2</td><td class="count finished">0</td><td class="count failed">2</td></tr>`
	if !strings.Contains(body, want) {
		t.Errorf("role page lacks %s", want)
	}
	_, _, body = get(t, h, "GET", "/scheduler/www-data/prod")
	if !strings.Contains(body, want) || strings.Contains(body, `data-environment="devel"`) || !strings.Contains(body, `<body data-page="environment">`) {
		t.Error("environment page does not show prod's jobs only")
	}
	_, _, body = get(t, h, "GET", "/scheduler/nobody")
	if !strings.Contains(body, `<p class="muted" id="no-jobs">No jobs for role nobody.</p>`) {
		t.Error("a role without jobs does not say so")
	}
}

func TestInstancePage(t *testing.T) {
	_, _, body := get(t, testHandler(), "GET", "/scheduler/www-data/prod/hello/1")
	var got []string
	for _, r := range rows(body) {
		got = append(got, r.class+":"+r.status)
	}
	if s, want := strings.Join(got, " "), "task:STARTING completed-task:KILLED completed-task:FAILED"; s != want {
		t.Errorf("instance 1 rows %q, want %q", s, want)
	}
}

func TestBadNames(t *testing.T) {
	h := testHandler()
	for _, path := range []string{
		"/scheduler/www%20data",
		"/scheduler/a%3Cb%3E",
		"/scheduler/www-data/pr%22od",
		"/scheduler/www-data/prod/hel%2Flo",
		"/scheduler//prod",
		"/scheduler/" + strings.Repeat("a", 256),
		"/scheduler/www-data/prod/hello/abc",
		"/scheduler/www-data/prod/hello/-1",
		"/scheduler/www-data/prod/hello/99999999999999999999",
		"/scheduler/www-data/prod/hello/task/bad%20id",
		"/scheduler/www-data/prod/hello/task/%3Cscript%3E",
	} {
		code, _, body := get(t, h, "GET", path)
		if code != http.StatusBadRequest || !strings.Contains(body, `<p class="error" id="error" data-code="400">`) {
			t.Errorf("GET %s: status %d, want a 400 page", path, code)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "<b>") {
			t.Errorf("GET %s: the bad name is not escaped", path)
		}
	}
}

func TestNotFound(t *testing.T) {
	h := testHandler()
	for path, msg := range map[string]string{
		"/scheduler/www-data/prod/nope":                           "There is no job www-data/prod/nope in cluster devcluster.",
		"/scheduler/www-data/prod/hello/7":                        "Job www-data/prod/hello has no tasks for instance 7.",
		"/scheduler/www-data/prod/hello/task/nope":                "Job www-data/prod/hello has no task nope.",
		"/scheduler/www-data/prod/hello/task/" + idCron:           "Job www-data/prod/hello has no task " + idCron + ".",
		"/scheduler/www-data/prod/nope/task/" + idRunning:         "There is no job www-data/prod/nope in cluster devcluster.",
		"/scheduler/www-data/prod/hello/task":                     "The path names no task",
		"/scheduler/www-data/prod/hello/update/abc":               "has no update",
		"/scheduler/www-data/prod/hello/task/" + idRunning + "/x": "There is no page at",
		"/scheduler/www-data/prod/hello/other/" + idRunning:       "There is no page at",
		"/updates/x": "There is no page at /updates/x.",
		"/elsewhere": "There is no page at /elsewhere.",
	} {
		code, _, body := get(t, h, "GET", path)
		if code != http.StatusNotFound || !strings.Contains(body, `data-code="404"`) || !strings.Contains(body, msg) {
			t.Errorf("GET %s: status %d, want a 404 page saying %q:\n%s", path, code, msg, body)
		}
		if !strings.Contains(body, `<body data-page="error">`) || !strings.Contains(body, `<span class="cluster" id="cluster">devcluster</span>`) {
			t.Errorf("GET %s: the 404 page lacks the layout", path)
		}
	}
}

func TestMethods(t *testing.T) {
	h := testHandler()
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		code, hdr, body := get(t, h, m, "/scheduler/www-data/prod/hello")
		if code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" || !strings.Contains(body, `data-code="405"`) {
			t.Errorf("%s: status %d, Allow %q, want a 405 page", m, code, hdr.Get("Allow"))
		}
	}
	if code, _, body := get(t, h, "HEAD", "/scheduler"); code != 200 || body != "" {
		t.Errorf("HEAD: status %d, body %q", code, body)
	}
}

func TestObserverLinks(t *testing.T) {
	link := regexp.MustCompile(`<a class="observer-link" href="([^"]*)">`)
	path := "/scheduler/www-data/prod/hello"

	_, _, body := get(t, testHandler(), "GET", path)
	var got []string
	for _, m := range link.FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	// agent-one has an observer (instance 0); agent-two (instance 1 and its
	// completed tasks) has none; the PENDING instance 2 has no host.
	if want := "http://agent-one:1338/task/" + idRunning; len(got) != 1 || got[0] != want {
		t.Errorf("observer links %v, want only %s", got, want)
	}
	for _, r := range rows(body) {
		if has := strings.Contains(r.cells, "observer-link"); has != (r.id == idRunning) {
			t.Errorf("row of %s: observer link %v", r.id, has)
		}
	}

	for name, cfg := range map[string]Config{
		"nil":   {},
		"empty": {ObserverURL: func(string) string { return "" }},
	} {
		_, _, body := get(t, Handler(fixture(), cfg), "GET", path)
		if strings.Contains(body, "observer-link") {
			t.Errorf("ObserverURL %s: the page has observer links", name)
		}
		_, _, body = get(t, Handler(fixture(), cfg), "GET", path+"/task/"+idRunning)
		if strings.Contains(body, "observer-link") {
			t.Errorf("ObserverURL %s: the task page has an observer link", name)
		}
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                            "0s ago",
		59 * time.Second:             "59s ago",
		3*time.Minute + time.Second:  "3m ago",
		5*time.Hour + 59*time.Minute: "5h ago",
		49 * time.Hour:               "2d ago",
		-3 * time.Minute:             "in 3m",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestStatusClass(t *testing.T) {
	want := map[string]string{
		"INIT": "status-pending", "PENDING": "status-pending", "THROTTLED": "status-pending",
		"ASSIGNED": "status-active", "STARTING": "status-active", "RUNNING": "status-active", "KILLING": "status-active",
		"RESTARTING": "status-active", "PREEMPTING": "status-active", "DRAINING": "status-active", "PARTITIONED": "status-active",
		"FINISHED": "status-finished", "FAILED": "status-failed", "KILLED": "status-failed", "LOST": "status-failed",
	}
	for _, st := range state.Statuses() {
		if got := statusClass(st.String()); got != want[st.String()] {
			t.Errorf("statusClass(%s) = %q, want %q", st, got, want[st.String()])
		}
	}
	if got := statusClass("BOGUS"); got != "status-unknown" {
		t.Errorf("statusClass(BOGUS) = %q", got)
	}
}

// FuzzPath checks that any request path gets a page (200, 400 or 404),
// never a panic or a server error.
func FuzzPath(f *testing.F) {
	for _, p := range []string{"/scheduler", "/scheduler/www-data/prod/hello/1", "/scheduler/www-data/prod/hello/task/" + idKilled,
		"/scheduler/../..", "/scheduler/a/b/c/task/%2e%2e", "/scheduler//", "/scheduler/%00", "/updates/", "/scheduler/a/b/c/update/x"} {
		f.Add(p)
	}
	h := testHandler()
	f.Fuzz(func(t *testing.T, path string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if c := rec.Code; c != 200 && c != 400 && c != 404 {
			t.Errorf("GET %q: status %d", path, c)
		}
	})
}

func TestUpdatePages(t *testing.T) {
	h := testHandler()
	_, _, body := get(t, h, "GET", "/updates")
	for _, want := range []string{
		`<body data-page="updates">`,
		`<tr class="update" data-update-id="` + idActiveUpdate + `" data-status="ROLLING_FORWARD">`,
		`<a class="update-link" href="/scheduler/www-data/prod/hello/update/` + idRolledBackUpdate + `">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/updates lacks %s", want)
		}
	}
	// In progress first, then completed.
	if strings.Index(body, idActiveUpdate) > strings.Index(body, idRolledBackUpdate) || !strings.Contains(body, `id="completed-updates"`) {
		t.Error("/updates does not list the update in progress before the completed one")
	}
	_, _, body = get(t, h, "GET", "/scheduler/www-data/prod/hello/update/"+idActiveUpdate)
	var progress []string
	for _, m := range regexp.MustCompile(`<tr class="update-instance" data-instance="(\d+)" data-action="([A-Z_]+)"><td class="instance"><a href="[^"]+">\d+</a></td><td class="change">(\w+)</td>`).FindAllStringSubmatch(body, -1) {
		progress = append(progress, m[1]+"="+m[3]+"/"+m[2])
	}
	if got, want := strings.Join(progress, " "), "0=update/INSTANCE_UPDATED 1=update/INSTANCE_UPDATING 2=update/PENDING 3=add/PENDING"; got != want {
		t.Errorf("instance progress %q, want %q", got, want)
	}
	for _, want := range []string{
		`<body data-page="update">`,
		`<td class="status status-active" id="update-status">ROLLING_FORWARD</td>`,
		`<span class="count done">1</span> of <span class="count total">4</span> instances done.`,
		`<tr><th>Strategy</th><td>batch, group size 2</td></tr>`,
		`<tr><th>org.apache.aurora.client.update_id</th><td>c0ffee</td></tr>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("update page lacks %s", want)
		}
	}
	_, _, body = get(t, h, "GET", "/scheduler/www-data/prod/hello/update/"+idRolledBackUpdate)
	if strings.Contains(body, "<script") || !strings.Contains(body, `<td class="message">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</td>`) {
		t.Error("the update event's message is not escaped")
	}
	for path, code := range map[string]int{
		"/scheduler/www-data/prod/hello/update/" + idActiveUpdate + "/": 200,
		"/scheduler/www-data/prod/hello/update/nope":                    404,
		"/scheduler/www-data/prod/gone/update/" + idActiveUpdate:        404, // another job's update
		"/scheduler/www-data/prod/hello/update/a%20b":                   400,
		"/scheduler/www-data/prod/hello/update":                         404,
	} {
		if got, _, _ := get(t, h, "GET", path); got != code {
			t.Errorf("GET %s: %d, want %d", path, got, code)
		}
	}
}

// TestCronPage checks the cron page's rows, and that a Source without cron
// jobs has no such page.
func TestCronPage(t *testing.T) {
	code, _, body := get(t, testHandler(), "GET", "/cronjobs/")
	if code != 200 || !strings.Contains(body, `<body data-page="cron">`) || !strings.Contains(body, "<code>America/New_York</code>") {
		t.Fatalf("GET /cronjobs/: %d\n%s", code, body)
	}
	rowRE := regexp.MustCompile(`<tr class="cron-job" data-job="([^"]*)">(.*)</tr>`)
	got := rowRE.FindAllStringSubmatch(body, -1)
	if len(got) != 2 || got[0][1] != "alice/test/batch" || got[1][1] != "www-data/devel/hello" {
		t.Fatalf("cron rows %q", got)
	}
	for _, want := range []string{"never", "not yet", "launch waits for kills"} {
		if !strings.Contains(got[0][2], want) {
			t.Errorf("row of a never-firing job waiting for kills lacks %q: %s", want, got[0][2])
		}
	}
	for _, want := range []string{"CANCEL_NEW", "(in 3m)", "(2m ago)", `href="/scheduler/www-data/devel/hello"`} {
		if !strings.Contains(got[1][2], want) {
			t.Errorf("row of devel/hello lacks %q: %s", want, got[1][2])
		}
	}
	plain := Handler(struct{ Source }{fixture()}, Config{Now: func() time.Time { return now }})
	if code, _, body := get(t, plain, "GET", "/cronjobs"); code != http.StatusNotFound || !strings.Contains(body, "no cron jobs page") {
		t.Errorf("GET /cronjobs without a CronSource: %d\n%s", code, body)
	}
	empty := &fakeSource{}
	if _, _, body := get(t, Handler(emptyCron{empty}, Config{}), "GET", "/cronjobs"); !strings.Contains(body, `id="no-cron-jobs"`) {
		t.Errorf("GET /cronjobs without cron jobs:\n%s", body)
	}
}

// emptyCron is a Source with a cron side and no cron jobs.
type emptyCron struct{ *fakeSource }

func (emptyCron) CronJobs() []api.CronJob { return nil }
