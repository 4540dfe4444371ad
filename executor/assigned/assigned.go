// Package assigned is the task description the scheduler hands the
// executor in Mesos TaskInfo.data: Aurora's AssignedTask (task id, agent,
// instance, assigned ports, and the TaskConfig) with, in
// TaskConfig.executorConfig.data, the job's Thermos configuration as the
// Aurora client ships it (§4.5 of the reference: the whole Job as JSON,
// thermos and mesos references still unresolved).
//
// Aurora's scheduler serializes AssignedTask with Thrift's binary protocol;
// ours uses JSON with the same field names (Thrift's IDL names for the
// outer structs, the pystachio schema names inside executorConfig.data), so
// that the mapping stays obvious and both sides share these types. Decode
// fills in the defaults of Aurora's schema for fields that are absent.
package assigned

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// AssignedTask is Aurora's AssignedTask (api.thrift).
type AssignedTask struct {
	TaskID        string         `json:"taskId"`
	SlaveID       string         `json:"slaveId"`
	SlaveHost     string         `json:"slaveHost"`
	Task          TaskConfig     `json:"task"`
	AssignedPorts map[string]int `json:"assignedPorts"`
	InstanceID    int            `json:"instanceId"`
}

// JobKey names a job: role/environment/name.
type JobKey struct {
	Role        string `json:"role"`
	Environment string `json:"environment"`
	Name        string `json:"name"`
}

func (k JobKey) String() string { return k.Role + "/" + k.Environment + "/" + k.Name }

// TaskConfig is the part of Aurora's TaskConfig the executor needs.
type TaskConfig struct {
	Job            JobKey         `json:"job"`
	IsService      bool           `json:"isService"`
	NumCPUs        float64        `json:"numCpus"`
	RAMMb          int64          `json:"ramMb"`
	DiskMb         int64          `json:"diskMb"`
	Tier           string         `json:"tier,omitempty"`
	ExecutorConfig ExecutorConfig `json:"executorConfig"`
}

// ExecutorConfig names the executor and carries its configuration.
type ExecutorConfig struct {
	Name string `json:"name"` // "AuroraExecutor"
	Data string `json:"data"` // the Job JSON, decoded into Job
}

// Job is the job configuration in executorConfig.data (MesosJob).
type Job struct {
	Name              string            `json:"name"`
	Role              string            `json:"role"`
	Environment       string            `json:"environment"`
	Cluster           string            `json:"cluster"`
	Service           bool              `json:"service"`
	Task              Task              `json:"task"`
	HealthCheckConfig HealthCheckConfig `json:"health_check_config"`
	Lifecycle         *LifecycleConfig  `json:"lifecycle"` // nil: the default HTTP lifecycle
	Announce          *Announcer        `json:"announce,omitempty"`
}

// Task is Thermos's Task.
type Task struct {
	Name             string       `json:"name"`
	Processes        []Process    `json:"processes"`
	Constraints      []Constraint `json:"constraints"`
	Resources        Resources    `json:"resources"`
	MaxFailures      *int         `json:"max_failures"`      // default 1; 0 = unlimited
	MaxConcurrency   int          `json:"max_concurrency"`   // 0 = unlimited
	FinalizationWait *float64     `json:"finalization_wait"` // seconds, default 30
	User             string       `json:"user,omitempty"`
}

// Constraint is an ordering constraint: the processes run in this order.
type Constraint struct {
	Order []string `json:"order"`
}

// Resources of a task.
type Resources struct {
	CPU  float64 `json:"cpu"`
	RAM  int64   `json:"ram"`  // bytes
	Disk int64   `json:"disk"` // bytes
	GPU  int     `json:"gpu"`
}

// Process is Thermos's Process.
type Process struct {
	Name        string   `json:"name"`
	Cmdline     string   `json:"cmdline"`
	MaxFailures *int     `json:"max_failures"` // default 1; 0 = forever
	Daemon      bool     `json:"daemon"`
	Ephemeral   bool     `json:"ephemeral"`
	MinDuration *float64 `json:"min_duration"` // seconds, default 5
	Final       bool     `json:"final"`
}

// HealthCheckConfig is Aurora's HealthCheckConfig; zero fields get its defaults.
// MinConsecutiveSuccesses is later Aurora's: 0.11 has none, and the health
// checker ignores it.
type HealthCheckConfig struct {
	HealthChecker           HealthChecker `json:"health_checker"`
	InitialIntervalSecs     *float64      `json:"initial_interval_secs"`    // 15
	IntervalSecs            *float64      `json:"interval_secs"`            // 10
	MaxConsecutiveFailures  *int          `json:"max_consecutive_failures"` // 0
	MinConsecutiveSuccesses *int          `json:"min_consecutive_successes"`
	TimeoutSecs             *float64      `json:"timeout_secs"` // 1
}

// HealthChecker is either an HTTP or a shell health checker (HTTP when neither is set).
type HealthChecker struct {
	HTTP  *HTTPHealthChecker  `json:"http,omitempty"`
	Shell *ShellHealthChecker `json:"shell,omitempty"`
}

// HTTPHealthChecker checks GET <endpoint> on the task's health port.
type HTTPHealthChecker struct {
	Endpoint             *string `json:"endpoint"`          // "/health"
	ExpectedResponse     *string `json:"expected_response"` // "ok"
	ExpectedResponseCode int     `json:"expected_response_code"`
}

// ShellHealthChecker runs a command; exit 0 is healthy.
type ShellHealthChecker struct {
	ShellCommand string `json:"shell_command"`
}

// LifecycleConfig is Aurora's LifecycleConfig; Http nil disables it.
type LifecycleConfig struct {
	HTTP *HTTPLifecycleConfig `json:"http"`
}

// HTTPLifecycleConfig drives graceful shutdown over HTTP.
type HTTPLifecycleConfig struct {
	Port                     *string  `json:"port"`                       // "health"
	GracefulShutdownEndpoint *string  `json:"graceful_shutdown_endpoint"` // "/quitquitquit"
	ShutdownEndpoint         *string  `json:"shutdown_endpoint"`          // "/abortabortabort"
	GracefulShutdownWaitSecs *float64 `json:"graceful_shutdown_wait_secs"`
	ShutdownWaitSecs         *float64 `json:"shutdown_wait_secs"`
}

// Announcer is Aurora's Announcer (ServerSet registration).
type Announcer struct {
	PrimaryPort *string           `json:"primary_port"` // "http"
	Portmap     map[string]string `json:"portmap"`      // alias → port name or number; default {"aurora": "{{primary_port}}"}
	ZKPath      string            `json:"zk_path,omitempty"`
}

// Decode parses TaskInfo.data. The error says what is wrong; the executor
// reports it with TASK_FAILED.
func Decode(data []byte) (*AssignedTask, *Job, error) {
	var at AssignedTask
	if err := json.Unmarshal(data, &at); err != nil {
		return nil, nil, fmt.Errorf("assigned task: %w", err)
	}
	if at.TaskID == "" {
		return nil, nil, errors.New("assigned task: no taskId")
	}
	if at.Task.ExecutorConfig.Data == "" {
		return nil, nil, errors.New("assigned task: empty executorConfig.data")
	}
	var job Job
	if err := json.Unmarshal([]byte(at.Task.ExecutorConfig.Data), &job); err != nil {
		return nil, nil, fmt.Errorf("executorConfig.data: %w", err)
	}
	if len(job.Task.Processes) == 0 {
		return nil, nil, errors.New("executorConfig.data: the task has no processes")
	}
	if at.AssignedPorts == nil {
		at.AssignedPorts = map[string]int{}
	}
	return &at, &job, nil
}

// Encode is Decode's inverse, for the scheduler and tests.
func Encode(at AssignedTask, job Job) ([]byte, error) {
	data, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	at.Task.ExecutorConfig = ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}
	return json.Marshal(at)
}

func orInt(p *int, d int) int {
	if p == nil {
		return d
	}
	return *p
}

func orFloat(p *float64, d float64) float64 {
	if p == nil {
		return d
	}
	return *p
}

func orString(p *string, d string) string {
	if p == nil {
		return d
	}
	return *p
}

func secs(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// MaxFailures of the task (default 1).
func (t Task) MaxFailuresOrDefault() int { return orInt(t.MaxFailures, 1) }

// FinalizationWaitOrDefault (default 30 s).
func (t Task) FinalizationWaitOrDefault() time.Duration { return secs(orFloat(t.FinalizationWait, 30)) }

// MaxFailuresOrDefault of the process (default 1).
func (p Process) MaxFailuresOrDefault() int { return orInt(p.MaxFailures, 1) }

// MinDurationOrDefault of the process (default 5 s).
func (p Process) MinDurationOrDefault() time.Duration { return secs(orFloat(p.MinDuration, 5)) }

// HealthCheck is a HealthCheckConfig with Aurora's defaults applied.
type HealthCheck struct {
	Shell                   string // shell command; empty for an HTTP check
	Endpoint                string
	ExpectedResponse        string
	ExpectedResponseCode    int
	InitialInterval         time.Duration
	Interval                time.Duration
	MaxConsecutiveFailures  int
	MinConsecutiveSuccesses int
	Timeout                 time.Duration
}

// Resolved applies Aurora's defaults.
func (h HealthCheckConfig) Resolved() HealthCheck {
	r := HealthCheck{
		InitialInterval:         secs(orFloat(h.InitialIntervalSecs, 15)),
		Interval:                secs(orFloat(h.IntervalSecs, 10)),
		MaxConsecutiveFailures:  orInt(h.MaxConsecutiveFailures, 0),
		MinConsecutiveSuccesses: orInt(h.MinConsecutiveSuccesses, 1),
		Timeout:                 secs(orFloat(h.TimeoutSecs, 1)),
	}
	if s := h.HealthChecker.Shell; s != nil {
		r.Shell = s.ShellCommand
		return r
	}
	hc := HTTPHealthChecker{}
	if h.HealthChecker.HTTP != nil {
		hc = *h.HealthChecker.HTTP
	}
	r.Endpoint = orString(hc.Endpoint, "/health")
	r.ExpectedResponse = orString(hc.ExpectedResponse, "ok")
	r.ExpectedResponseCode = hc.ExpectedResponseCode
	return r
}

// Lifecycle is the HTTP lifecycle with defaults applied; Port is empty when
// it is disabled.
type Lifecycle struct {
	Port                     string
	GracefulShutdownEndpoint string
	ShutdownEndpoint         string
	GracefulShutdownWait     time.Duration
	ShutdownWait             time.Duration
}

// LifecycleOrDefault applies Aurora's defaults: HTTP lifecycle on the
// "health" port unless the job disabled it (lifecycle without http).
func (j Job) LifecycleOrDefault() Lifecycle {
	h := &HTTPLifecycleConfig{}
	if j.Lifecycle != nil {
		h = j.Lifecycle.HTTP
	}
	if h == nil {
		return Lifecycle{}
	}
	return Lifecycle{
		Port:                     orString(h.Port, "health"),
		GracefulShutdownEndpoint: orString(h.GracefulShutdownEndpoint, "/quitquitquit"),
		ShutdownEndpoint:         orString(h.ShutdownEndpoint, "/abortabortabort"),
		GracefulShutdownWait:     secs(orFloat(h.GracefulShutdownWaitSecs, 5)),
		ShutdownWait:             secs(orFloat(h.ShutdownWaitSecs, 5)),
	}
}

// PrimaryPortOrDefault is the announcer's primary port name (default "http").
func (a Announcer) PrimaryPortOrDefault() string { return orString(a.PrimaryPort, "http") }
