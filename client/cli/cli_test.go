package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeScheduler answers the API from canned tasks and jobs, and records
// the calls it got.
type fakeScheduler struct {
	mu    sync.Mutex
	tasks []api.ScheduledTask
	calls []string
	auth  bool   // require basic auth for killTasks
	fail  string // a method answered with INVALID_REQUEST
	// drainPolls is how many maintenanceStatus calls still say DRAINING.
	drainPolls int
	// restarts counts restartShards per instance; failRestarts makes the
	// next n restarted tasks of an instance fail at once.
	restarts, failRestarts map[int]int
	// updates are the job updates the scheduler knows; a ROLLING_FORWARD
	// one moves to updateEnd after it is looked at once.
	updates   []api.JobUpdateDetails
	updateEnd string
}

func (f *fakeScheduler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method+" "+string(body))
	ok := func(res *api.Result) { json.NewEncoder(w).Encode(api.Response{ResponseCode: api.OK, Result: res}) }
	if method == f.fail {
		method = "fail"
	}
	switch method {
	case "getTasksStatus", "getTasksWithoutConfigs":
		var p struct{ Query api.TaskQuery }
		json.Unmarshal(body, &p)
		var out []api.ScheduledTask
		for _, t := range f.tasks {
			if p.Query.Matches(t) {
				if method == "getTasksWithoutConfigs" {
					t.AssignedTask.Task.ExecutorConfig.Data = ""
				}
				out = append(out, t)
			}
		}
		ok(&api.Result{ScheduleStatusResult: &api.ScheduleStatusResult{Tasks: out}})
	case "getJobs":
		ok(&api.Result{GetJobsResult: &api.GetJobsResult{Configs: []api.JobConfiguration{
			{Key: api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}},
			{Key: api.JobKey{Role: "www-data", Environment: "devel", Name: "world"}},
			{Key: api.JobKey{Role: "www-data", Environment: "prod", Name: "nightly"}, CronSchedule: "0 2 * * *"},
		}}})
	case "killTasks":
		if f.auth {
			if _, _, has := r.BasicAuth(); !has {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		for i := range f.tasks {
			f.tasks[i].Status = "KILLED"
		}
		ok(nil)
	case "getTierConfigs":
		ok(&api.Result{GetTierConfigResult: &api.GetTierConfigResult{DefaultTierName: "preemptible", Tiers: []api.TierConfig{
			{Name: "preemptible", Settings: map[string]string{"preemptible": "true", "revocable": "false"}},
			{Name: "preferred", Settings: map[string]string{"preemptible": "false", "revocable": "false"}},
		}}})
	case "createJob":
		var p struct{ Description api.JobConfiguration }
		json.Unmarshal(body, &p)
		for i := 0; i < p.Description.InstanceCount; i++ {
			t := task(i, "RUNNING")
			t.AssignedTask.Task = p.Description.TaskConfig
			f.tasks = append(f.tasks, t)
		}
		ok(nil)
	case "populateJobConfig":
		var p struct{ Description api.JobConfiguration }
		json.Unmarshal(body, &p)
		ok(&api.Result{PopulateJobResult: &api.PopulateJobResult{TaskConfig: p.Description.TaskConfig}})
	case "maintenanceStatus":
		mode := "DRAINED"
		if f.drainPolls > 0 {
			f.drainPolls--
			mode = "DRAINING"
		}
		ok(&api.Result{MaintenanceStatusResult: &api.MaintenanceStatusResult{Statuses: []api.HostStatus{{Host: "b.local", Mode: mode}, {Host: "a.local", Mode: "NONE"}}}})
	case "drainHosts":
		f.drainPolls = 2
		ok(&api.Result{DrainHostsResult: &api.DrainHostsResult{Statuses: []api.HostStatus{{Host: "b.local", Mode: "DRAINING"}}}})
	case "getQuota":
		ok(&api.Result{GetQuotaResult: &api.GetQuotaResult{
			Quota:                 api.ResourceAggregate{NumCpus: 4, RAMMb: 4096, DiskMb: 8192},
			ProdSharedConsumption: api.ResourceAggregate{NumCpus: 1.5, RAMMb: 1536, DiskMb: 512},
		}})
	case "addInstances":
		var p struct {
			Key   api.InstanceKey
			Count int
		}
		json.Unmarshal(body, &p)
		for i := 0; i < p.Count; i++ {
			f.tasks = append(f.tasks, task(len(f.tasks), "RUNNING"))
		}
		ok(nil)
	case "restartShards":
		var p struct{ ShardIDs []int }
		json.Unmarshal(body, &p)
		for _, id := range p.ShardIDs {
			for i := range f.tasks {
				if f.tasks[i].AssignedTask.InstanceID == id && f.tasks[i].Status == "RUNNING" {
					f.tasks[i].Status = "KILLED"
				}
			}
			f.restarts[id]++
			nt := task(id, "RUNNING")
			nt.AssignedTask.TaskID = fmt.Sprintf("%s-restart%d", nt.AssignedTask.TaskID, f.restarts[id])
			if f.failRestarts[id] > 0 {
				f.failRestarts[id]--
				nt.Status = "FAILED"
			}
			f.tasks = append(f.tasks, nt)
		}
		ok(nil)
	case "startJobUpdate":
		var p struct{ Request api.JobUpdateRequest }
		json.Unmarshal(body, &p)
		if p.Request.InstanceCount == 0 {
			json.NewEncoder(w).Encode(api.Response{ResponseCode: api.OK, Details: []api.ResponseDetail{{Message: "Job is unchanged by proposed update."}}})
			return
		}
		sum := f.updates[0].Update.Summary
		ok(&api.Result{StartJobUpdateResult: &api.StartJobUpdateResult{Key: sum.Key, UpdateSummary: sum}})
	case "getJobUpdateSummaries":
		var p struct{ JobUpdateQuery api.JobUpdateQuery }
		json.Unmarshal(body, &p)
		var out []api.JobUpdateSummary
		for _, d := range f.updates {
			st := d.Update.Summary.State.Status
			if len(p.JobUpdateQuery.UpdateStatuses) == 0 || strings.Contains(strings.Join(p.JobUpdateQuery.UpdateStatuses, ","), st) {
				out = append(out, d.Update.Summary)
			}
		}
		ok(&api.Result{GetJobUpdateSummariesResult: &api.GetJobUpdateSummariesResult{UpdateSummaries: out}})
	case "getJobUpdateDetails":
		var p struct{ Key api.JobUpdateKey }
		json.Unmarshal(body, &p)
		res := &api.GetJobUpdateDetailsResult{}
		for i := range f.updates {
			if f.updates[i].Update.Summary.Key.ID == p.Key.ID {
				d := f.updates[i]
				res.Details = &d
				// Each look moves a rolling update on: the next poll sees it end.
				if d.Update.Summary.State.Status == "ROLLING_FORWARD" && f.updateEnd != "" {
					f.updates[i].Update.Summary.State.Status = f.updateEnd
				}
			}
		}
		ok(&api.Result{GetJobUpdateDetailsResult: res})
	case "pauseJobUpdate", "resumeJobUpdate", "abortJobUpdate", "rollbackJobUpdate":
		ok(nil)
	case "slaDrainHosts":
		ok(&api.Result{DrainHostsResult: &api.DrainHostsResult{Statuses: []api.HostStatus{{Host: "b.local", Mode: "DRAINING"}}}})
	case "descheduleCronJob":
		json.NewEncoder(w).Encode(api.Response{ResponseCode: api.OK, Details: []api.ResponseDetail{{Message: "Job www-data/prod/hello is not scheduled with cron"}}})
	case "scheduleCronJob", "startCronJob",
		"setQuota", "performBackup", "snapshot", "triggerExplicitTaskReconciliation", "triggerImplicitTaskReconciliation",
		"pruneTasks", "startMaintenance", "endMaintenance":
		ok(nil)
	default:
		json.NewEncoder(w).Encode(api.Response{ResponseCode: api.InvalidRequest, Details: []api.ResponseDetail{{Message: "unknown method " + strings.TrimPrefix(r.URL.Path, "/api/")}}})
	}
}

func task(instance int, status string) api.ScheduledTask {
	return api.ScheduledTask{Status: status, AssignedTask: api.AssignedTask{
		TaskID: "www-data-prod-hello-" + string(rune('0'+instance)) + "-uuid", SlaveHost: "agent.local", InstanceID: instance,
		AssignedPorts: map[string]int{"http": 31000 + instance},
		Task: api.TaskConfig{Job: api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}, MaxTaskFailures: 1,
			Resources: []api.Resource{{NumCpus: ptr(0.5)}, {RAMMb: ptr(int64(128))}, {DiskMb: ptr(int64(256))}}},
	}, TaskEvents: []api.TaskEvent{{Timestamp: 1795600000000, Status: "PENDING"}, {Timestamp: 1795600001000, Status: status, Message: "msg"}}}
}

func ptr[T any](v T) *T { return &v }

func run(t *testing.T, srvURL string, admin bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Version: "test", Poll: time.Millisecond, RetryFor: -1,
		Clusters: func() (map[string]client.Cluster, error) {
			return map[string]client.Cluster{"devcluster": {Name: "devcluster", SchedulerURI: srvURL}}, nil
		}}
	code := Run(context.Background(), env, admin, args)
	return code, out.String(), errb.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(p, []byte(got), 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestOutputs(t *testing.T) {
	f := &fakeScheduler{tasks: []api.ScheduledTask{task(0, "RUNNING"), task(1, "FAILED")}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		admin bool
		args  []string
		code  int
	}{
		{"job_list", false, []string{"job", "list", "devcluster/www-data"}, 0},
		{"job_list_glob", false, []string{"job", "list", "devcluster/*/prod"}, 0},
		{"job_status", false, []string{"job", "status", "devcluster/www-data/prod/hello"}, 0},
		{"job_status_json", false, []string{"job", "status", "devcluster/www-data/prod/hello", "--write-json"}, 0},
		{"get_scheduler", true, []string{"get_scheduler", "devcluster"}, 0},
		{"query", true, []string{"query", "devcluster", "www-data", "hello"}, 0},
		{"query_format", true, []string{"query", "-l", "%taskId% on %slaveHost%", "--states", "RUNNING,FAILED", "--force", "devcluster", "www-data", "hello"}, 0},
		{"host_status", true, []string{"host_status", "--hosts", "a.local,b.local", "devcluster"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := run(t, srv.URL, tc.admin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr)
			}
			golden(t, tc.name+".txt", strings.ReplaceAll(out, srv.URL, "http://SCHEDULER"))
		})
	}
	// host_status: `... 2>&1 | tail -n1 | awk '{print $6}'` is the mode.
	_, _, stderr := run(t, srv.URL, true, "host_status", "--hosts", "a.local,b.local", "devcluster")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if f := strings.Fields(lines[len(lines)-1]); len(f) < 6 || f[5] != "DRAINED" {
		t.Errorf("host_status last line %q: field 6 is not the mode", lines[len(lines)-1])
	}
}

func TestExitCodes(t *testing.T) {
	f := &fakeScheduler{tasks: []api.ScheduledTask{task(0, "RUNNING")}, auth: true, fail: "getQuota"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, tc := range []struct {
		name   string
		url    string
		args   []string
		code   int
		stderr string
	}{
		{"kill needs instances", srv.URL, []string{"job", "kill", "devcluster/www-data/prod/hello"}, client.ExitInvalidParameter, "use killall"},
		{"bad job key part", srv.URL, []string{"job", "killall", "devcluster/www-data/pr od/hello"}, client.ExitInvalidParameter, `environment "pr od"`},
		{"short job key", srv.URL, []string{"job", "killall", "devcluster/www-data/hello"}, client.ExitInvalidParameter, "CLUSTER/ROLE/ENV/NAME"},
		{"unknown cluster", srv.URL, []string{"job", "list", "nowhere"}, client.ExitInvalidParameter, "Unknown cluster: nowhere"},
		{"unreachable scheduler", deadURL, []string{"job", "list", "devcluster"}, client.ExitNetworkError, deadURL},
		{"auth failure", srv.URL, []string{"job", "killall", "devcluster/www-data/prod/hello"}, client.ExitAuthError, "Authentication failed"},
		{"api error", srv.URL, []string{"quota", "get", "devcluster/www-data"}, client.ExitAPIError, "unknown method getQuota"},
		{"strict kill of an inactive instance", srv.URL, []string{"job", "kill", "devcluster/www-data/prod/hello/0,5", "--strict"}, client.ExitInvalidParameter, "instance 5"},
		{"unknown verb", srv.URL, []string{"job", "frobnicate"}, client.ExitInvalidCommand, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.url, false, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
}

func TestKillInBatchesWaitsForTerminal(t *testing.T) {
	f := &fakeScheduler{tasks: []api.ScheduledTask{task(0, "RUNNING"), task(1, "RUNNING"), task(2, "RUNNING")}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	code, out, stderr := run(t, srv.URL, false, "job", "kill", "devcluster/www-data/prod/hello/0-2", "--batch-size", "2")
	if code != 0 || out != "Job kill succeeded\n" {
		t.Fatalf("exit %d %q %s", code, out, stderr)
	}
	var kills []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "killTasks") {
			kills = append(kills, c)
		}
	}
	if len(kills) != 2 || !strings.Contains(kills[0], `"instances":[0,1]`) || !strings.Contains(kills[1], `"instances":[2]`) {
		t.Fatalf("kill batches %v", kills)
	}
}
