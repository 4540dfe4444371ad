package cli

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

const helloConfig = `
hello = Process(name = 'hello', cmdline = 'echo hello {{mesos.instance}}; sleep 60')
task = SequentialTask(processes = [hello], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))
jobs = [
  Service(cluster = 'devcluster', environment = 'prod', role = 'www-data', name = 'hello', instances = 2, task = task),
  Job(cluster = 'devcluster', environment = 'prod', role = 'www-data', name = 'batch', task = task, production = True),
  Job(cluster = 'devcluster', environment = 'prod', role = 'www-data', name = 'nightly', task = task, cron_schedule = '0 * * * *'),
]
`

func writeConfig(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCommands(t *testing.T) {
	f := &fakeScheduler{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := writeConfig(t, "hello.aurora", helloConfig)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"config_list", []string{"config", "list", cfg}},
		{"job_inspect", []string{"job", "inspect", "devcluster/www-data/prod/hello", cfg}},
		{"job_inspect_json", []string{"job", "inspect", "devcluster/www-data/prod/hello", cfg, "--write-json"}},
		{"job_create", []string{"job", "create", "devcluster/www-data/prod/hello", cfg, "--wait-until", "RUNNING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := run(t, srv.URL, false, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d; stderr %s", code, stderr)
			}
			out = strings.ReplaceAll(out, srv.URL, "http://SCHEDULER")
			golden(t, tc.name+".txt", strings.ReplaceAll(out, cfg, "CONFIG"))
		})
	}
	if n := len(f.tasks); n != 2 {
		t.Fatalf("create made %d tasks, want 2", n)
	}
	// The client completes the tier from the scheduler's tiers.
	if tier := f.tasks[0].AssignedTask.Task.Tier; tier != "preemptible" {
		t.Errorf("service job tier %q, want preemptible", tier)
	}
	// inspect --write-json's output is --read-json input.
	_, js, _ := run(t, srv.URL, false, "job", "inspect", "devcluster/www-data/prod/batch", cfg, "--write-json")
	jcfg := writeConfig(t, "batch.json", js)
	if code, out, stderr := run(t, srv.URL, false, "config", "list", jcfg, "--read-json"); code != 0 || out != "jobs=[devcluster/www-data/prod/batch]\n" {
		t.Fatalf("config list --read-json: %d %q %s", code, out, stderr)
	}
	if code, _, stderr := run(t, srv.URL, false, "job", "create", "devcluster/www-data/prod/batch", jcfg, "--read-json"); code != 0 {
		t.Fatalf("create --read-json: %d %s", code, stderr)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "createJob ") && strings.Contains(c, `"name":"batch"`) {
			var p struct{ Description api.JobConfiguration }
			json.Unmarshal([]byte(strings.TrimPrefix(c, "createJob ")), &p)
			if p.Description.TaskConfig.Tier != "preferred" {
				t.Errorf("production job tier %q, want preferred", p.Description.TaskConfig.Tier)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	f := &fakeScheduler{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	good := writeConfig(t, "hello.aurora", helloConfig)
	typo := writeConfig(t, "typo.aurora", "hello = Proces(name = 'hello', cmdline = 'true')\njobs = []\n")
	bad := writeConfig(t, "bad.aurora", strings.Replace(helloConfig, "ram = 16*MB", "ram = 0", 1))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"typo names file and line", []string{"job", "create", "devcluster/www-data/prod/hello", typo}, client.ExitInvalidConfiguration, typo + ":1:"},
		{"typo hint", []string{"config", "list", typo}, client.ExitInvalidConfiguration, "Process"},
		{"no such job", []string{"job", "create", "devcluster/www-data/prod/nope", good}, client.ExitInvalidConfiguration, "available jobs"},
		{"cron job", []string{"job", "create", "devcluster/www-data/prod/nightly", good}, client.ExitCommandFailure, "aurora cron schedule"},
		{"cron schedule of a service", []string{"cron", "schedule", "devcluster/www-data/prod/hello", good}, client.ExitCommandFailure, "aurora job create"},
		{"cron show of a non-cron job", []string{"cron", "show", "devcluster/www-data/prod/hello"}, client.ExitInvalidParameter, "No cron entry found for job devcluster/www-data/prod/hello"},
		{"invalid resources", []string{"job", "inspect", "devcluster/www-data/prod/hello", bad}, client.ExitInvalidConfiguration, "ram"},
		{"bad wait state", []string{"job", "create", "devcluster/www-data/prod/hello", good, "--wait-until", "DONE"}, client.ExitInvalidParameter, "PENDING, RUNNING or FINISHED"},
		{"bad bind", []string{"config", "list", good, "--bind", "nothing"}, client.ExitInvalidParameter, "var=value"},
		{"missing file", []string{"config", "list", "/nonexistent.aurora"}, client.ExitInvalidConfiguration, "/nonexistent.aurora"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, srv.URL, false, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "createJob") {
			t.Errorf("a failed create reached the scheduler: %s", c)
		}
	}
}

// TestMoreOutputs pins the output of the commands scripts and people read,
// and the RPCs each one makes.
func TestMoreOutputs(t *testing.T) {
	cfg := writeConfig(t, "hello.aurora", helloConfig)
	for _, tc := range []struct {
		name  string
		admin bool
		args  []string
		calls []string // RPC names expected, in order (getTasksStatus polls left out)
	}{
		{"quota_get", false, []string{"quota", "get", "devcluster/www-data"}, []string{"getQuota"}},
		{"quota_get_json", false, []string{"quota", "get", "devcluster/www-data", "--write-json"}, []string{"getQuota"}},
		{"job_open", false, []string{"job", "open", "devcluster/www-data/prod/hello"}, nil},
		{"job_add", false, []string{"job", "add", "devcluster/www-data/prod/hello/0", "2", "--wait-until", "RUNNING"}, []string{"addInstances"}},
		{"job_restart", false, []string{"job", "restart", "devcluster/www-data/prod/hello", "--batch-size", "2", "--watch-secs", "0"}, []string{"restartShards", "restartShards"}},
		{"job_diff", false, []string{"job", "diff", "devcluster/www-data/prod/hello", cfg}, []string{"getTierConfigs", "populateJobConfig"}},
		{"set_quota", true, []string{"set_quota", "devcluster", "www-data", "4", "4G", "8192M"}, []string{"setQuota"}},
		{"increase_quota", true, []string{"increase_quota", "devcluster", "www-data", "1", "1G", "1G"}, []string{"getQuota", "setQuota"}},
		{"scheduler_backup_now", true, []string{"scheduler_backup_now", "devcluster"}, []string{"performBackup"}},
		{"scheduler_snapshot", true, []string{"scheduler_snapshot", "devcluster"}, []string{"snapshot"}},
		{"reconcile_tasks", true, []string{"reconcile_tasks", "devcluster"}, []string{"triggerExplicitTaskReconciliation"}},
		{"reconcile_tasks_implicit", true, []string{"reconcile_tasks", "--type", "implicit", "devcluster"}, []string{"triggerImplicitTaskReconciliation"}},
		{"prune_tasks", true, []string{"prune_tasks", "--states", "FINISHED", "devcluster"}, []string{"pruneTasks"}},
		{"host_deactivate", true, []string{"host_deactivate", "--hosts", "b.local", "devcluster"}, []string{"startMaintenance"}},
		{"host_activate", true, []string{"host_activate", "--hosts", "b.local", "devcluster"}, []string{"endMaintenance"}},
		{"cron_schedule", false, []string{"cron", "schedule", "devcluster/www-data/prod/nightly", cfg}, []string{"getTierConfigs", "scheduleCronJob"}},
		{"cron_deschedule", false, []string{"cron", "deschedule", "devcluster/www-data/prod/hello"}, []string{"descheduleCronJob"}},
		{"cron_start", false, []string{"cron", "start", "devcluster/www-data/prod/nightly"}, []string{"startCronJob"}},
		{"cron_show", false, []string{"cron", "show", "devcluster/www-data/prod/nightly"}, []string{"getJobs"}},
		{"sla_host_drain", true, []string{"sla_host_drain", "--hosts", "b.local", "--default_percentage", "80", "--default_duration", "1h", "--force_drain_timeout", "2d", "devcluster"}, []string{"slaDrainHosts"}},
		{"host_drain", true, []string{"host_drain", "--hosts", "b.local", "devcluster"}, []string{"drainHosts", "maintenanceStatus", "maintenanceStatus", "maintenanceStatus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeScheduler{tasks: []api.ScheduledTask{task(0, "RUNNING"), task(1, "RUNNING"), task(2, "RUNNING")},
				restarts: map[int]int{}, failRestarts: map[int]int{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			code, out, stderr := run(t, srv.URL, tc.admin, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d; stderr %s", code, stderr)
			}
			out = strings.ReplaceAll(out, srv.URL, "http://SCHEDULER")
			out = regexp.MustCompile(`/tmp/aurora-diff[0-9]+/`).ReplaceAllString(out, "DIR/")
			out = regexp.MustCompile(`(?m)^(\+\+\+|---) (\S+)\t.*$`).ReplaceAllString(out, "$1 $2")
			golden(t, tc.name+".txt", out+stderr)
			var got []string
			for _, c := range f.calls {
				if m, _, _ := strings.Cut(c, " "); m != "getTasksStatus" && m != "getTasksWithoutConfigs" {
					got = append(got, m)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.calls, ",") {
				t.Errorf("RPCs %v, want %v", got, tc.calls)
			}
		})
	}
}

// A restarted instance whose new task fails is restarted again up to
// --max-per-instance-failures, and the job fails past --max-total-failures.
func TestRestartFailureThresholds(t *testing.T) {
	for _, tc := range []struct {
		name             string
		fail             map[int]int
		perInstance, tot string
		code             int
		restarts         int
	}{
		{"retried within the allowance", map[int]int{1: 1}, "1", "0", 0, 4},
		{"an instance fails past its allowance", map[int]int{1: 2}, "1", "0", client.ExitCommandFailure, 3},
		{"tolerated by max-total-failures", map[int]int{1: 1}, "0", "1", 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeScheduler{tasks: []api.ScheduledTask{task(0, "RUNNING"), task(1, "RUNNING"), task(2, "RUNNING")},
				restarts: map[int]int{}, failRestarts: tc.fail}
			srv := httptest.NewServer(f)
			defer srv.Close()
			code, _, stderr := run(t, srv.URL, false, "job", "restart", "devcluster/www-data/prod/hello", "--watch-secs", "0",
				"--max-per-instance-failures", tc.perInstance, "--max-total-failures", tc.tot)
			n := 0
			for _, r := range f.restarts {
				n += r
			}
			if code != tc.code || n != tc.restarts {
				t.Errorf("exit %d after %d restarts (%s); want %d after %d", code, n, stderr, tc.code, tc.restarts)
			}
		})
	}
}

func TestSlaHostDrainArguments(t *testing.T) {
	f := &fakeScheduler{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--hosts", "b.local", "--default_duration", "30x", "devcluster"}, "--default_duration"},
		{[]string{"--hosts", "b.local", "--force_drain_timeout", "-1d", "devcluster"}, "--force_drain_timeout"},
		{[]string{"--hosts", "b.local", "--default_percentage", "120", "devcluster"}, "--default_percentage"},
		{[]string{"devcluster"}, "give --hosts or --filename"},
	} {
		code, _, stderr := run(t, srv.URL, true, append([]string{"sla_host_drain"}, tc.args...)...)
		if code != client.ExitInvalidParameter || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: exit %d %q", tc.args, code, stderr)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("bad arguments reached the scheduler: %v", f.calls)
	}
}
