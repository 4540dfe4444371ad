package schema

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// full is a Job with every field set; the unions take their first kind.
func full() Job {
	return Job{
		Name: "hello", Role: "www-data", Contact: "www-data@localhost", Cluster: "devcluster", Environment: "prod",
		Instances: 3,
		Task: Task{
			Name: "hello",
			Processes: []Process{{
				Name: "hello", Cmdline: "echo {{thermos.ports[http]}}", MaxFailures: ptr(3), Daemon: true, Ephemeral: true,
				MinDuration: ptr(7.5), Final: true,
				Logger: &Logger{Destination: "both", Mode: "rotate", Rotate: &RotatePolicy{LogSize: 1 << 20, Backups: 2}},
			}},
			Constraints:      []Constraint{{Order: []string{"a", "b"}}},
			Resources:        &Resources{CPU: 0.5, RAM: 64 << 20, Disk: 128 << 20, GPU: 1},
			MaxFailures:      ptr(2),
			MaxConcurrency:   4,
			FinalizationWait: ptr(12.0),
			User:             "nobody",
		},
		Announce:            &Announcer{PrimaryPort: ptr("http"), Portmap: map[string]string{"aurora": "http"}, ZKPath: "/aurora/x"},
		Tier:                "preferred",
		CronSchedule:        "*/5 * * * *",
		CronCollisionPolicy: "CANCEL_NEW",
		UpdateConfig: UpdateConfig{
			BatchSize: 2, WatchSecs: 30, MaxPerShardFailures: 1, MaxTotalFailures: 2, RollbackOnFailure: true,
			WaitForBatchCompletion: true, PulseIntervalSecs: ptr(60), SlaAware: true,
			UpdateStrategy: &UpdateStrategy{Queue: &QueueStrategy{BatchSize: 3}},
		},
		Constraints:     map[string]string{"host": "limit:1"},
		Service:         true,
		MaxTaskFailures: 5,
		Production:      true,
		Priority:        9,
		HealthCheckConfig: HealthCheckConfig{
			HealthChecker: HealthCheckerConfig{
				HTTP:  &HTTPHealthChecker{Endpoint: ptr("/h"), ExpectedResponse: ptr("yes"), ExpectedResponseCode: 200},
				Shell: &ShellHealthChecker{ShellCommand: "true"},
			},
			InitialIntervalSecs: ptr(1.5), IntervalSecs: ptr(2.5), MaxConsecutiveFailures: ptr(3),
			MinConsecutiveSuccesses: ptr(4), TimeoutSecs: ptr(0.5),
		},
		Lifecycle: &LifecycleConfig{HTTP: &HTTPLifecycleConfig{
			Port: ptr("admin"), GracefulShutdownEndpoint: ptr("/q"), ShutdownEndpoint: ptr("/a"),
			GracefulShutdownWaitSecs: ptr(6.0), ShutdownWaitSecs: ptr(7.0),
		}},
		TaskLinks:       map[string]string{"http": "http://%host%:%port:http%"},
		ExecutorConfig:  ExecutorConfig{Name: "AuroraExecutor", Data: "x"},
		EnableHooks:     true,
		PartitionPolicy: &PartitionPolicy{Reschedule: true, DelaySecs: 10},
		SlaPolicy:       &SlaPolicy{Count: &CountSlaPolicy{Count: 2, DurationSecs: 60}},
		Metadata:        []Metadata{{Key: "k", Value: "v"}},
		Container:       &Container{Docker: &Docker{Image: "busybox", Parameters: []Parameter{{Name: "env", Value: "A=1"}}}},
	}
}

// variants are full() with the other kinds of each union.
func variants() []Job {
	a, b, c := full(), full(), full()
	a.UpdateConfig.UpdateStrategy = &UpdateStrategy{Batch: &BatchStrategy{BatchSize: 2, AutopauseAfterBatch: true}}
	b.UpdateConfig.UpdateStrategy = &UpdateStrategy{VariableBatch: &VariableBatchStrategy{BatchSizes: []int{1, 2}, AutopauseAfterBatch: true}}
	a.SlaPolicy = &SlaPolicy{Percentage: &PercentageSlaPolicy{Percentage: 66.6, DurationSecs: 30}}
	b.SlaPolicy = &SlaPolicy{Coordinator: &CoordinatorSlaPolicy{CoordinatorURL: "http://c", StatusKey: "drain"}}
	a.Container = &Container{Mesos: &Mesos{Image: &Image{Name: "app", ImageID: "sha512-1"},
		Volumes: []Volume{{ContainerPath: "/c", HostPath: "/h", Mode: "RO"}}}}
	b.Container = &Container{Mesos: &Mesos{Image: &Image{Name: "busybox", Tag: "latest"}, Volumes: []Volume{}}}
	c.HealthCheckConfig.HealthChecker.Shell = nil
	return []Job{full(), a, b, c}
}

// unset lists the paths of the fields that are zero in v.
func unset(v reflect.Value, path string, out map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			out[path] = true
			return
		}
		unset(v.Elem(), path, out)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			unset(v.Field(i), path+"."+v.Type().Field(i).Name, out)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			out[path] = true
		}
		for i := 0; i < v.Len(); i++ {
			unset(v.Index(i), path+"[]", out)
		}
	default:
		if v.IsZero() {
			out[path] = true
		}
	}
}

// covered fails the test unless every field of Job is set in one of jobs,
// so that a field added to the schema must be added to the tests too.
func covered(t *testing.T, jobs ...Job) {
	t.Helper()
	never := map[string]bool{}
	unset(reflect.ValueOf(jobs[0]), "Job", never)
	for _, j := range jobs[1:] {
		zero := map[string]bool{}
		unset(reflect.ValueOf(j), "Job", zero)
		for p := range never {
			if !zero[p] {
				delete(never, p)
			}
		}
	}
	// Fields inside a union kind that none of jobs picks are not even
	// visited; the variants pick every kind.
	for p := range never {
		t.Errorf("%s is set in none of the test's jobs", p)
	}
}

// TestRoundTrip marshals a job with every field set (and each kind of
// every union) and checks that it decodes to the same value.
func TestRoundTrip(t *testing.T) {
	vs := variants()
	covered(t, vs...)
	for i, j := range vs {
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		var back Job
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("variant %d: %v\n%s", i, err, b)
		}
		if !reflect.DeepEqual(back, j) {
			t.Errorf("variant %d changed in a round trip:\n%+v\n%+v\n%s", i, back, j, b)
		}
	}
}

// aurora011 is a job as Aurora 0.11's client writes it into
// executorConfig.data (its pystachio JSON, defaults included, without
// instances and update_config; those appear in `job inspect --write-json`,
// which this document also stands for). Every key of Aurora's MesosJob,
// Task, Process, Resources, Constraint, HealthCheckConfig,
// LifecycleConfig, Announcer, PartitionPolicy, SLA policy and container
// structs is present. (container is a pystachio Choice: a Mesos object
// is written as its own fields.)
const aurora011 = `{
  "environment": "prod", "cluster": "devcluster", "role": "www-data", "name": "hello",
  "contact": "www-data@localhost", "service": true, "max_task_failures": 1, "production": false,
  "priority": 0, "cron_collision_policy": "KILL_EXISTING", "cron_schedule": "0 * * * *",
  "enable_hooks": false, "tier": "preemptible", "instances": 2,
  "metadata": [{"key": "owner", "value": "team"}],
  "constraints": {"rack": "!r1,r2"},
  "task_links": {"http": "http://%host%:%port:http%"},
  "executor_config": {"name": "AuroraExecutor", "data": ""},
  "update_config": {"batch_size": 1, "watch_secs": 45, "max_per_shard_failures": 0,
    "max_total_failures": 0, "rollback_on_failure": true, "wait_for_batch_completion": false,
    "pulse_interval_secs": 60, "sla_aware": false, "update_strategy": {"batch_size": 2}},
  "health_check_config": {"health_checker": {"http": {"endpoint": "/health", "expected_response": "ok",
      "expected_response_code": 0}},
    "initial_interval_secs": 15.0, "interval_secs": 10.0, "timeout_secs": 1.0,
    "max_consecutive_failures": 0, "min_consecutive_successes": 1},
  "lifecycle": {"http": {"port": "health", "graceful_shutdown_endpoint": "/quitquitquit",
    "shutdown_endpoint": "/abortabortabort", "graceful_shutdown_wait_secs": 5, "shutdown_wait_secs": 5}},
  "announce": {"primary_port": "http", "portmap": {"aurora": "http"}, "zk_path": "/aurora/x"},
  "partition_policy": {"reschedule": true, "delay_secs": 0},
  "sla_policy": {"coordinator_url": "http://c", "status_key": "drain"},
  "container": {"image": {"name": "busybox", "tag": "latest"},
    "volumes": [{"container_path": "/c", "host_path": "/h", "mode": "RO"}]},
  "task": {"name": "hello",
    "processes": [{"name": "hello", "cmdline": "echo {{thermos.ports[http]}}", "max_failures": 1,
      "daemon": false, "ephemeral": false, "min_duration": 5, "final": false,
      "logger": {"destination": "file", "mode": "rotate", "rotate": {"log_size": 104857600, "backups": 5}}}],
    "constraints": [{"order": ["hello"]}],
    "resources": {"cpu": 1.0, "ram": 134217728, "disk": 134217728, "gpu": 0},
    "max_failures": 1, "max_concurrency": 0, "finalization_wait": 30, "user": "www-data"}
}`

func TestAurora011Document(t *testing.T) {
	var got Job
	if err := json.Unmarshal([]byte(aurora011), &got); err != nil {
		t.Fatal(err)
	}
	want := Job{
		Name: "hello", Role: "www-data", Contact: "www-data@localhost", Cluster: "devcluster", Environment: "prod",
		Instances: 2,
		Task: Task{
			Name: "hello",
			Processes: []Process{{Name: "hello", Cmdline: "echo {{thermos.ports[http]}}", MaxFailures: ptr(1), MinDuration: ptr(5.0),
				Logger: &Logger{Destination: "file", Mode: "rotate", Rotate: &RotatePolicy{LogSize: 100 << 20, Backups: 5}}}},
			Constraints:      []Constraint{{Order: []string{"hello"}}},
			Resources:        &Resources{CPU: 1, RAM: 128 << 20, Disk: 128 << 20},
			MaxFailures:      ptr(1),
			FinalizationWait: ptr(30.0),
			User:             "www-data",
		},
		Announce:            &Announcer{PrimaryPort: ptr("http"), Portmap: map[string]string{"aurora": "http"}, ZKPath: "/aurora/x"},
		Tier:                "preemptible",
		CronSchedule:        "0 * * * *",
		CronCollisionPolicy: "KILL_EXISTING",
		UpdateConfig: UpdateConfig{BatchSize: 1, WatchSecs: 45, RollbackOnFailure: true, PulseIntervalSecs: ptr(60),
			UpdateStrategy: &UpdateStrategy{Queue: &QueueStrategy{BatchSize: 2}}},
		Constraints:     map[string]string{"rack": "!r1,r2"},
		Service:         true,
		MaxTaskFailures: 1,
		HealthCheckConfig: HealthCheckConfig{
			HealthChecker:       HealthCheckerConfig{HTTP: &HTTPHealthChecker{Endpoint: ptr("/health"), ExpectedResponse: ptr("ok")}},
			InitialIntervalSecs: ptr(15.0), IntervalSecs: ptr(10.0), MaxConsecutiveFailures: ptr(0),
			MinConsecutiveSuccesses: ptr(1), TimeoutSecs: ptr(1.0),
		},
		Lifecycle: &LifecycleConfig{HTTP: &HTTPLifecycleConfig{Port: ptr("health"), GracefulShutdownEndpoint: ptr("/quitquitquit"),
			ShutdownEndpoint: ptr("/abortabortabort"), GracefulShutdownWaitSecs: ptr(5.0), ShutdownWaitSecs: ptr(5.0)}},
		TaskLinks:       map[string]string{"http": "http://%host%:%port:http%"},
		ExecutorConfig:  ExecutorConfig{Name: "AuroraExecutor"},
		PartitionPolicy: &PartitionPolicy{Reschedule: true},
		SlaPolicy:       &SlaPolicy{Coordinator: &CoordinatorSlaPolicy{CoordinatorURL: "http://c", StatusKey: "drain"}},
		Metadata:        []Metadata{{Key: "owner", Value: "team"}},
		Container: &Container{Mesos: &Mesos{Image: &Image{Name: "busybox", Tag: "latest"},
			Volumes: []Volume{{ContainerPath: "/c", HostPath: "/h", Mode: "RO"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("decoded\n%s\nwant\n%s", g, w)
	}
	// Every key of the document is a field of the schema: re-encoding
	// loses none of them.
	var doc, back map[string]any
	if err := json.Unmarshal([]byte(aurora011), &doc); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range missingKeys(doc, back, "") {
		t.Errorf("%s is in Aurora's document but not in the schema", k)
	}
}

// missingKeys lists the object keys of a that b lacks, recursively.
func missingKeys(a, b any, path string) []string {
	var out []string
	switch a := a.(type) {
	case map[string]any:
		bm, _ := b.(map[string]any)
		for k, v := range a {
			bv, ok := bm[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, missingKeys(v, bv, path+"."+k)...)
		}
	case []any:
		bl, _ := b.([]any)
		for i, v := range a {
			if i < len(bl) {
				out = append(out, missingKeys(v, bl[i], path+"[]")...)
			}
		}
	}
	return out
}

// TestDefaults checks the ...OrDefault methods on a job that sets nothing.
func TestDefaults(t *testing.T) {
	var j Job
	if err := json.Unmarshal([]byte(`{"task": {"processes": [{"name": "p", "cmdline": "c"}]}, "announce": {}}`), &j); err != nil {
		t.Fatal(err)
	}
	p := j.Task.Processes[0]
	hc := j.HealthCheckConfig.Resolved()
	lc := j.LifecycleOrDefault()
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"task max_failures", j.Task.MaxFailuresOrDefault(), 1},
		{"finalization_wait", j.Task.FinalizationWaitOrDefault(), 30 * time.Second},
		{"process max_failures", p.MaxFailuresOrDefault(), 1},
		{"min_duration", p.MinDurationOrDefault(), 5 * time.Second},
		{"health check", hc, HealthCheck{Endpoint: "/health", ExpectedResponse: "ok", InitialInterval: 15 * time.Second,
			Interval: 10 * time.Second, MinConsecutiveSuccesses: 1, Timeout: time.Second}},
		{"lifecycle", lc, Lifecycle{Port: "health", GracefulShutdownEndpoint: "/quitquitquit", ShutdownEndpoint: "/abortabortabort",
			GracefulShutdownWait: 5 * time.Second, ShutdownWait: 5 * time.Second}},
		{"primary port", j.Announce.PrimaryPortOrDefault(), "http"},
		{"disabled lifecycle", Job{Lifecycle: &LifecycleConfig{}}.LifecycleOrDefault(), Lifecycle{}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, want %+v", c.what, c.got, c.want)
		}
	}
}
