package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/executor/assigned"
)

// loadSrc writes src as dir/name and loads it.
func loadSrc(t *testing.T, name, src string, opts Options) (*File, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return LoadFile(path, opts)
}

const okJob = `
jobs = [Job(cluster = 'c', role = 'r', environment = 'e', name = 'j',
  task = SimpleTask('j', 'echo {{x}}'))]
`

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"unknown field", "p = Process(name = 'a',\n  cmdlin = 'x')\n",
			[]string{"bad.aurora:1:12: Process has no field \"cmdlin\" (did you mean \"cmdline\"?)"}},
		{"unknown name", "x = 1\np = Proces(name = 'a')\n",
			[]string{"bad.aurora:2:5: undefined: Proces (did you mean Process?)"}},
		{"syntax error", "x = (1,\ny = 2\n", []string{"bad.aurora:2:4: syntax error: got '=', want ')'"}},
		{"try", "x = 1\ntry:\n  y = 2\nexcept:\n  pass\n", []string{"bad.aurora:2: unsupported Python construct \"try\""}},
		{"with open", "with open('x') as f:\n  y = f.read()\n", []string{"bad.aurora:1: unsupported Python construct \"with\""}},
		{"print statement", "print 'hello'\n", []string{"bad.aurora:1: unsupported Python construct: the Python 2 print statement"}},
		{"import sys", "import getpass\nimport sys\n", []string{"bad.aurora:2:", "import sys: module not supported (allowed: getpass"}},
		{"from import star", "from os import *\n", []string{"bad.aurora:1: unsupported Python construct: from os import *"}},
		{"class method", "class P(Struct):\n  x = Default(String, 'a')\n  def f(self):\n    return 1\n", []string{"bad.aurora:3: class P: methods are not supported"}},
		{"class without base", "class P:\n  x = String\n", []string{"bad.aurora:1: class P: only subclasses of Struct"}},
		{"class bad attr", "class P(Struct):\n  x = 5\n", []string{"bad.aurora:1:", "attribute x must be a type"}},
		{"bad type", "r = Resources(cpu = 'lots', ram = 1, disk = 1)\n", []string{"bad.aurora:1:14: Resources.cpu: expected Float, got string \"lots\""}},
		{"bad enum", "v = Volume(container_path = 'a', host_path = 'b', mode = Mode('RX'))\n", []string{"bad.aurora:1:", "\"RX\" is not one of Mode"}},
		{"field typo in attr", "p = Process(name = 'a', cmdline = 'b')\nx = p.cmdlne()\n", []string{"bad.aurora:2:", "has no .cmdlne field or method (did you mean .cmdline?)"}},
		{"open for writing", "x = open('out.txt', 'w')\n", []string{"bad.aurora:1:9: open(\"out.txt\", \"w\"): configs may only read files"}},
		{"open a missing file", "x = open('nope.txt')\n", []string{"bad.aurora:1:9: open(\"nope.txt\")", "no such file"}},
		{"include missing", "include('nope.aurora')\n", []string{"bad.aurora:1: include(\"nope.aurora\"):"}},
		{"include dynamic", "f = 'x'\ninclude(f)\n", []string{"bad.aurora:2: include() takes one literal path"}},
		{"runaway loop", "def f():\n  while True:\n    pass\nf()\n", []string{"bad.aurora:", "too many steps"}},
		{"sequential constraints", "t = SequentialTask(processes = [], constraints = [])\n", []string{"bad.aurora:1:", "SequentialTask: constraints are not allowed"}},
		{"jobs not a list", "jobs = 5\n", []string{"jobs must be a list"}},
		{"jobs not jobs", "jobs = [Process(name = 'a', cmdline = 'b')]\n", []string{"jobs[0] is a Process, not a Job"}},
		{"star star", "x = 2 ** 10\n", []string{"bad.aurora:1:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSrc(t, "bad.aurora", tc.src, Options{User: "u"})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	src := `
base = Job(cluster = 'c', role = 'r', environment = 'e', task = SimpleTask('t', 'echo {{stop_file}} {{thermos.ports[http]}}'))
jobs = [base(name = 'a'), base(name = 'b'), base(name = 'b', environment = 'prod'),
        Job(cluster = 'c', environment = 'e', name = 'norole', task = SimpleTask('t', 'true'))]
`
	f, err := loadSrc(t, "sel.aurora", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  [4]string
		want string
	}{
		{[4]string{"c", "r", "e", "zz"}, "no job matches c/r/e/zz; available jobs: c//e/norole, c/r/e/a, c/r/e/b, c/r/prod/b"},
		{[4]string{"c", "r", "", "b"}, "2 jobs match c/r/*/b: c/r/e/b, c/r/prod/b"},
		{[4]string{"c", "r", "e", "a"}, "sel.aurora:3:13: config contains unbound variables: stop_file (bind them with --bind stop_file=...)"},
		{[4]string{"c", "", "e", "norole"}, "sel.aurora:4:12: Job.role is required"},
	} {
		_, err := f.Select(tc.key[0], tc.key[1], tc.key[2], tc.key[3])
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Select(%v) = %v; want %q", tc.key, err, tc.want)
		}
	}
	_, err = f.Select("c", "r", "e", "a")
	var ue *UnboundError
	if !errors.As(err, &ue) || len(ue.Names) != 1 || ue.Names[0] != "stop_file" {
		t.Errorf("want an UnboundError naming stop_file, got %#v", err)
	}
	// With the binding it resolves, and the runtime reference stays.
	f, err = loadSrc(t, "sel.aurora", src, Options{Bindings: map[string]string{"stop_file": "/tmp/x"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.Select("", "", "e", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Task.Processes[0].Cmdline; got != "echo /tmp/x {{thermos.ports[http]}}" {
		t.Errorf("cmdline %q", got)
	}
}

func TestMustacheCycle(t *testing.T) {
	src := `jobs = [Job(cluster = 'c', role = 'r', environment = 'e', name = 'j',
  task = SimpleTask('j', 'echo {{a}}')).bind(a = '{{b}}', b = 'x{{a}}')]
`
	f, err := loadSrc(t, "cycle.aurora", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Select("", "", "", "j")
	if err == nil || !strings.Contains(err.Error(), "reference cycle") {
		t.Fatalf("want a cycle error, got %v", err)
	}
}

func TestMustacheExplosion(t *testing.T) {
	// Each level doubles: without a bound this would take 2^40 steps.
	src := "p = Process(name = 'p', cmdline = '{{a0}}')\nb = {}\n" +
		"for i in range(40):\n  b['a%d' % i] = '{{a%d}}{{a%d}}' % (i + 1, i + 1)\n" +
		"jobs = [Job(cluster = 'c', role = 'r', environment = 'e', name = 'j', task = Task(processes = [p], resources = Resources(cpu = 1, ram = MB, disk = MB))).bind(b)]\n"
	f, err := loadSrc(t, "boom.aurora", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Select("", "", "", "j")
	if err == nil || !strings.Contains(err.Error(), "expand") {
		t.Fatalf("want an expansion error, got %v", err)
	}
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"max_total_failures", `jobs = [Job(cluster='c', role='r', environment='e', instances=2, update_config=UpdateConfig(max_total_failures=2), task=SimpleTask('j', 'x'))]`,
			"update_config.max_total_failures (2) must be lower than the number of instances (2)"},
		{"cycle", `a = Process(name='a', cmdline='x')
b = Process(name='b', cmdline='x')
jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[a, b], constraints=order(a, b) + order(b, a), resources=Resources(cpu=1, ram=MB, disk=MB)))]`,
			"the order constraints have a cycle"},
		{"daemon dependency", `a = Process(name='a', cmdline='x', daemon=True)
b = Process(name='b', cmdline='x')
jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[a, b], constraints=order(a, b), resources=Resources(cpu=1, ram=MB, disk=MB)))]`,
			"b may not depend on the daemon process a"},
		{"ephemeral dependency", `a = Process(name='a', cmdline='x', ephemeral=True)
b = Process(name='b', cmdline='x')
jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[a, b], constraints=order(a, b), resources=Resources(cpu=1, ram=MB, disk=MB)))]`,
			"the non-ephemeral process b may not depend on the ephemeral process a"},
		{"final mix", `a = Process(name='a', cmdline='x', final=True)
b = Process(name='b', cmdline='x')
jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[b, a], constraints=order(b, a), resources=Resources(cpu=1, ram=MB, disk=MB)))]`,
			"b and a are ordered but only one of them is final"},
		{"small ram", `jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[Process(name='a', cmdline='x')], resources=Resources(cpu=1, ram=1000, disk=MB)))]`,
			"ram must be at least 1MB"},
		{"no resources", `jobs = [Job(cluster='c', role='r', environment='e', task=Task(processes=[Process(name='a', cmdline='x')]))]`,
			"must specify resources"},
		{"bad name", `jobs = [Job(cluster='c', role='r', environment='e', name='a b', task=SimpleTask('j', 'x'))]`,
			"may only contain letters"},
		{"process name", `jobs = [Job(cluster='c', role='r', environment='e', name='j', task=Task(processes=[Process(name='../x', cmdline='x')], resources=Resources(cpu=1, ram=MB, disk=MB)))]`,
			"process name \"../x\" is not a valid file name"},
		{"cron service", `jobs = [Service(cluster='c', role='r', environment='e', cron_schedule='* * * * *', task=SimpleTask('j', 'x'))]`,
			"a service cannot have a cron_schedule"},
		{"pulse", `jobs = [Job(cluster='c', role='r', environment='e', update_config=UpdateConfig(pulse_interval_secs=10), task=SimpleTask('j', 'x'))]`,
			"pulse_interval_secs must be at least 60"},
		{"ambiguous strategy", `jobs = [Job(cluster='c', role='r', environment='e', instances=5, update_config=UpdateConfig(batch_size=2, update_strategy=QueueUpdateStrategy(batch_size=2)), task=SimpleTask('j', 'x'))]`,
			"update_strategy cannot be combined"},
		{"static port", `jobs = [Job(cluster='c', role='r', environment='e', announce=Announcer(portmap={'aurora': '8080'}), task=SimpleTask('j', 'x'))]`,
			"static port 8080 requires a dedicated constraint"},
		{"dedicated role", `jobs = [Job(cluster='c', role='r', environment='e', constraints={'dedicated': 'other/x'}, task=SimpleTask('j', 'x'))]`,
			"dedicated constraint \"other/x\" does not match role r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := loadSrc(t, "v.aurora", tc.src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			j, err := f.Select("", "", "", "")
			if err != nil {
				t.Fatal(err)
			}
			err = j.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestExecutorRoundTrip checks that ExecutorData, shipped in an
// AssignedTask as the scheduler ships it, decodes with the executor's own
// decoder into the very job the client evaluated: every field equal, but
// instances and update_config, which the client leaves out.
func TestExecutorRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.aurora")
	for _, path := range files {
		sel, opts := directives(t, path)
		f, err := LoadFile(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		j, err := f.Select(sel[0], sel[1], sel[2], sel[3])
		if err != nil {
			t.Fatal(err)
		}
		data, err := j.ExecutorData()
		if err != nil {
			t.Fatal(err)
		}
		at := api.AssignedTask{TaskID: "t-0", Task: api.TaskConfig{Job: api.JobKey{Role: j.Role, Environment: j.Environment, Name: j.Name}}}
		raw, err := assigned.Encode(at, schema.Job{})
		if err != nil {
			t.Fatal(err)
		}
		// Replace the (empty) job with ours, as the scheduler ships it.
		raw = []byte(strings.Replace(string(raw), `"data":"{`, `"data":`+quote(string(data))+`,"x":"{`, 1))
		_, aj, err := assigned.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want := j.Job
		want.Instances, want.UpdateConfig = 0, schema.UpdateConfig{}
		if !reflect.DeepEqual(*aj, want) {
			got, _ := jsonMarshal(aj)
			exp, _ := jsonMarshal(want)
			t.Errorf("%s: the executor decoded\n%s\nthe client evaluated\n%s", path, got, exp)
		}
	}
}

func quote(s string) string {
	b, _ := jsonMarshal(s)
	return string(b)
}

func TestLoadJSON(t *testing.T) {
	f, err := LoadFile("testdata/http_example_updated.aurora", Options{User: "vagrant"})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.Select("devcluster", "vagrant", "test", "http_example")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := j.ExecutorData()
	back, err := LoadJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	// instances and update_config are not in the executor data: defaults.
	if back.Instances != 1 || back.UpdateConfig.WatchSecs != 45 {
		t.Errorf("defaults not applied: %d %d", back.Instances, back.UpdateConfig.WatchSecs)
	}
	back.Instances, back.UpdateConfig = j.Instances, j.UpdateConfig
	a, _ := back.JobConfiguration()
	b, _ := j.JobConfiguration()
	ja, _ := jsonMarshal(a)
	jb, _ := jsonMarshal(b)
	if string(ja) != string(jb) {
		t.Errorf("round trip through JSON differs:\n%s\n%s", ja, jb)
	}
	// {"jobs": [...]} with a minimal legacy job: defaults and mustaches.
	j2, err := LoadJSON([]byte(`{"jobs": [{"cluster": "c", "role": "r", "environment": "e",
		"task": {"processes": [{"name": "p", "cmdline": "echo {{role}}"}], "resources": {"cpu": 1, "ram": 1048576, "disk": 1048576}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if j2.Name != "p" || j2.Task.Processes[0].Cmdline != "echo r" || j2.Task.Processes[0].MinDurationOrDefault() != 5*time.Second || j2.HealthCheckConfig.Resolved().Interval != 10*time.Second || j2.Task.Processes[0].MinDuration == nil {
		t.Errorf("json job: %+v", j2)
	}
	if _, err := LoadJSON([]byte(`{"cluster": "c", "bogus": 1}`)); err == nil || !strings.Contains(err.Error(), `no field "bogus"`) {
		t.Errorf("bogus field: %v", err)
	}
	if _, err := LoadJSON([]byte(`[1]`)); err == nil {
		t.Error("want an error for a JSON list")
	}
}

func TestDefaults(t *testing.T) {
	f, err := loadSrc(t, "d.aurora", okJob, Options{Bindings: map[string]string{"x": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.Select("c", "r", "e", "j")
	if err != nil {
		t.Fatal(err)
	}
	p := j.Task.Processes[0]
	h := j.HealthCheckConfig
	u := j.UpdateConfig
	lc := j.Lifecycle.HTTP
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"process max_failures", val(p.MaxFailures), 1}, {"min_duration", val(p.MinDuration), 5.0},
		{"daemon", p.Daemon, false}, {"ephemeral", p.Ephemeral, false}, {"final", p.Final, false},
		{"task max_failures", val(j.Task.MaxFailures), 1}, {"finalization_wait", val(j.Task.FinalizationWait), 30.0},
		{"max_concurrency", j.Task.MaxConcurrency, 0},
		{"initial_interval_secs", val(h.InitialIntervalSecs), 15.0}, {"interval_secs", val(h.IntervalSecs), 10.0},
		{"max_consecutive_failures", val(h.MaxConsecutiveFailures), 0}, {"min_consecutive_successes", val(h.MinConsecutiveSuccesses), 1},
		{"timeout_secs", val(h.TimeoutSecs), 1.0}, {"endpoint", val(h.HealthChecker.HTTP.Endpoint), "/health"},
		{"expected_response", val(h.HealthChecker.HTTP.ExpectedResponse), "ok"}, {"expected_response_code", h.HealthChecker.HTTP.ExpectedResponseCode, 0},
		{"batch_size", u.BatchSize, 1}, {"watch_secs", u.WatchSecs, 45}, {"max_per_shard_failures", u.MaxPerShardFailures, 0},
		{"max_total_failures", u.MaxTotalFailures, 0}, {"rollback_on_failure", u.RollbackOnFailure, true},
		{"wait_for_batch_completion", u.WaitForBatchCompletion, false}, {"sla_aware", u.SlaAware, false},
		{"lifecycle port", val(lc.Port), "health"}, {"graceful", val(lc.GracefulShutdownEndpoint), "/quitquitquit"},
		{"shutdown", val(lc.ShutdownEndpoint), "/abortabortabort"}, {"graceful wait", val(lc.GracefulShutdownWaitSecs), 5.0}, {"shutdown wait", val(lc.ShutdownWaitSecs), 5.0},
		{"instances", j.Instances, 1}, {"max_task_failures", j.MaxTaskFailures, 1}, {"service", j.Service, false},
		{"production", j.Production, false}, {"priority", j.Priority, 0}, {"cron_collision_policy", j.CronCollisionPolicy, "KILL_EXISTING"},
		{"executor", j.ExecutorConfig.Name, "AuroraExecutor"}, {"enable_hooks", j.EnableHooks, false},
		{"gpu", j.Task.Resources.GPU, int64(0)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	f, err = loadSrc(t, "d.aurora", `jobs = [Job(cluster='c', role='r', environment='e', announce=Announcer(), partition_policy=PartitionPolicy(), sla_policy=CoordinatorSlaPolicy(coordinator_url='u'), task=SimpleTask('j', 'x'))]`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, err = f.Select("", "", "", "j")
	if err != nil {
		t.Fatal(err)
	}
	if a := j.Announce; val(a.PrimaryPort) != "http" || a.Portmap["aurora"] != "http" || len(a.Portmap) != 1 {
		t.Errorf("announcer defaults %+v", a)
	}
	if p := j.PartitionPolicy; !p.Reschedule || p.DelaySecs != 0 {
		t.Errorf("partition policy defaults %+v", p)
	}
	if s := j.SlaPolicy.Coordinator; s == nil || s.StatusKey != "drain" {
		t.Errorf("sla defaults %+v", j.SlaPolicy)
	}
	if got := j.Ports(); len(got) != 1 || got[0] != "http" {
		t.Errorf("ports %v (the announcer's primary port is requested)", got)
	}
}

// val is what p points to, or nil (the client's jobs are fully defaulted:
// nil is a missing default).
func val[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.aurora")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(string(b))
	}
	f.Add("class P(Struct):\n  x = Default(String, '{{y}}')\njobs = [Job(task=SimpleTask('a', '{{p.x}}')).bind(p = P())]\n")
	f.Add("x = '{{a{{b}}}}'\n")
	f.Fuzz(func(t *testing.T, src string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "fuzz.aurora")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := LoadFile(path, Options{User: "u", Env: func(string) (string, bool) { return "", false }})
		if err != nil {
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("panic: %v", err)
			}
			return
		}
		for _, j := range file.Jobs {
			if j.err != nil {
				continue
			}
			_ = j.Validate()
			_, _ = j.JobConfiguration()
			_ = j.Warnings()
		}
	})
}
