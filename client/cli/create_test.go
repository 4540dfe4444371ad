package cli

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	run(t, srv.URL, false, "job", "create", "devcluster/www-data/prod/batch", cfg)
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
