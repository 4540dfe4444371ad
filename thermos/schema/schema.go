// Package schema owns the job configuration the Aurora client writes into
// TaskConfig.executorConfig.data and the executor reads back: Aurora's
// MesosJob with Thermos's Task, Process, Constraint and Resources, as
// pystachio JSON (§4.5 of the reference). The JSON keys are the pystachio
// field names of Aurora 0.11's schema.
//
// The client (client/config) decodes a fully defaulted job into Job; the
// executor decodes what the scheduler hands it, in which a field may be
// absent. Fields whose absence means "Aurora's default" are pointers, and
// the ...OrDefault methods, Resolved and LifecycleOrDefault apply the
// defaults, so that both sides read the same values.
//
// This package imports nothing of ours: the client, the scheduler and the
// executor import it.
package schema

import (
	"encoding/json"
	"math"
	"time"
)

// Job is Aurora's MesosJob. The executor's copy has no update_config and
// no instances (the client drops them from executorConfig.data).
type Job struct {
	Name                string            `json:"name"`
	Role                string            `json:"role"`
	Contact             string            `json:"contact,omitempty"`
	Cluster             string            `json:"cluster"`
	Environment         string            `json:"environment"`
	Instances           int               `json:"instances"`
	Task                Task              `json:"task"`
	Announce            *Announcer        `json:"announce,omitempty"`
	Tier                string            `json:"tier,omitempty"`
	CronSchedule        string            `json:"cron_schedule,omitempty"`
	CronCollisionPolicy string            `json:"cron_collision_policy"`
	UpdateConfig        UpdateConfig      `json:"update_config"`
	Constraints         map[string]string `json:"constraints,omitempty"`
	Service             bool              `json:"service"`
	MaxTaskFailures     int               `json:"max_task_failures"`
	Production          bool              `json:"production"`
	Priority            int               `json:"priority"`
	HealthCheckConfig   HealthCheckConfig `json:"health_check_config"`
	Lifecycle           *LifecycleConfig  `json:"lifecycle,omitempty"` // nil: the default HTTP lifecycle
	TaskLinks           map[string]string `json:"task_links,omitempty"`
	ExecutorConfig      ExecutorConfig    `json:"executor_config"`
	EnableHooks         bool              `json:"enable_hooks"`
	PartitionPolicy     *PartitionPolicy  `json:"partition_policy,omitempty"`
	SlaPolicy           *SlaPolicy        `json:"sla_policy,omitempty"`
	Metadata            []Metadata        `json:"metadata"`
	Container           *Container        `json:"container,omitempty"`
}

// Task is Thermos's Task.
type Task struct {
	Name             string       `json:"name"`
	Processes        []Process    `json:"processes"`
	Constraints      []Constraint `json:"constraints"`
	Resources        *Resources   `json:"resources,omitempty"`
	MaxFailures      *int         `json:"max_failures"`      // default 1; 0 = unlimited
	MaxConcurrency   int          `json:"max_concurrency"`   // 0 = unlimited
	FinalizationWait *float64     `json:"finalization_wait"` // seconds, default 30
	User             string       `json:"user,omitempty"`
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
	Logger      *Logger  `json:"logger,omitempty"`
}

// Logger configures a process's stdout/stderr.
type Logger struct {
	Destination string        `json:"destination"`
	Mode        string        `json:"mode"`
	Rotate      *RotatePolicy `json:"rotate,omitempty"`
}

// RotatePolicy is the log rotation of Logger(mode='rotate').
type RotatePolicy struct {
	LogSize int64 `json:"log_size"`
	Backups int   `json:"backups"`
}

// Constraint is an ordering constraint: the processes run in this order.
type Constraint struct {
	Order []string `json:"order"`
}

// Resources of a task; ram and disk in bytes.
type Resources struct {
	CPU  float64 `json:"cpu"`
	RAM  int64   `json:"ram"`
	Disk int64   `json:"disk"`
	GPU  int64   `json:"gpu"`
}

// UpdateConfig is Aurora's UpdateConfig.
type UpdateConfig struct {
	BatchSize              int             `json:"batch_size"`
	WatchSecs              int             `json:"watch_secs"`
	MaxPerShardFailures    int             `json:"max_per_shard_failures"`
	MaxTotalFailures       int             `json:"max_total_failures"`
	RollbackOnFailure      bool            `json:"rollback_on_failure"`
	WaitForBatchCompletion bool            `json:"wait_for_batch_completion"`
	PulseIntervalSecs      *int            `json:"pulse_interval_secs,omitempty"`
	SlaAware               bool            `json:"sla_aware"`
	UpdateStrategy         *UpdateStrategy `json:"update_strategy,omitempty"`
}

// UpdateStrategy is one of the three strategies (exactly one is set).
type UpdateStrategy struct {
	Queue         *QueueStrategy
	Batch         *BatchStrategy
	VariableBatch *VariableBatchStrategy
}

// QueueStrategy is QueueUpdateStrategy.
type QueueStrategy struct {
	BatchSize int `json:"batch_size"`
}

// BatchStrategy is BatchUpdateStrategy.
type BatchStrategy struct {
	BatchSize           int  `json:"batch_size"`
	AutopauseAfterBatch bool `json:"autopause_after_batch"`
}

// VariableBatchStrategy is VariableBatchUpdateStrategy.
type VariableBatchStrategy struct {
	BatchSizes          []int `json:"batch_sizes"`
	AutopauseAfterBatch bool  `json:"autopause_after_batch"`
}

// UnmarshalJSON tells the strategies apart by their fields.
func (s *UpdateStrategy) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	switch {
	case keys["batch_sizes"] != nil:
		s.VariableBatch = new(VariableBatchStrategy)
		return json.Unmarshal(b, s.VariableBatch)
	case keys["autopause_after_batch"] != nil:
		s.Batch = new(BatchStrategy)
		return json.Unmarshal(b, s.Batch)
	}
	s.Queue = new(QueueStrategy)
	return json.Unmarshal(b, s.Queue)
}

// MarshalJSON writes the chosen strategy.
func (s UpdateStrategy) MarshalJSON() ([]byte, error) {
	switch {
	case s.VariableBatch != nil:
		return json.Marshal(s.VariableBatch)
	case s.Batch != nil:
		return json.Marshal(s.Batch)
	}
	return json.Marshal(s.Queue)
}

// HealthCheckConfig is Aurora's HealthCheckConfig; absent fields get its
// defaults (Resolved). MinConsecutiveSuccesses is later Aurora's: 0.11 has
// none, and the health checker ignores it.
type HealthCheckConfig struct {
	HealthChecker           HealthCheckerConfig `json:"health_checker"`
	InitialIntervalSecs     *float64            `json:"initial_interval_secs"`    // 15
	IntervalSecs            *float64            `json:"interval_secs"`            // 10
	MaxConsecutiveFailures  *int                `json:"max_consecutive_failures"` // 0
	MinConsecutiveSuccesses *int                `json:"min_consecutive_successes"`
	TimeoutSecs             *float64            `json:"timeout_secs"` // 1
}

// HealthCheckerConfig holds an HTTP or a shell health checker (HTTP when
// neither is set).
type HealthCheckerConfig struct {
	HTTP  *HTTPHealthChecker  `json:"http,omitempty"`
	Shell *ShellHealthChecker `json:"shell,omitempty"`
}

// HTTPHealthChecker is HttpHealthChecker: GET <endpoint> on the task's
// health port.
type HTTPHealthChecker struct {
	Endpoint             *string `json:"endpoint"`          // "/health"
	ExpectedResponse     *string `json:"expected_response"` // "ok"
	ExpectedResponseCode int     `json:"expected_response_code"`
}

// ShellHealthChecker runs a command; exit 0 is healthy.
type ShellHealthChecker struct {
	ShellCommand string `json:"shell_command"`
}

// LifecycleConfig is Aurora's LifecycleConfig; HTTP nil disables it.
type LifecycleConfig struct {
	HTTP *HTTPLifecycleConfig `json:"http,omitempty"`
}

// HTTPLifecycleConfig is HttpLifecycleConfig: graceful shutdown over HTTP.
type HTTPLifecycleConfig struct {
	Port                     *string  `json:"port"`                       // "health"
	GracefulShutdownEndpoint *string  `json:"graceful_shutdown_endpoint"` // "/quitquitquit"
	ShutdownEndpoint         *string  `json:"shutdown_endpoint"`          // "/abortabortabort"
	GracefulShutdownWaitSecs *float64 `json:"graceful_shutdown_wait_secs"`
	ShutdownWaitSecs         *float64 `json:"shutdown_wait_secs"`
}

// Announcer is Aurora's Announcer: registration in a ZooKeeper ServerSet.
type Announcer struct {
	PrimaryPort *string           `json:"primary_port"` // "http"
	Portmap     map[string]string `json:"portmap"`      // alias → port name or number; default {"aurora": "{{primary_port}}"}
	ZKPath      string            `json:"zk_path,omitempty"`
}

// ExecutorConfig names a custom executor.
type ExecutorConfig struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// PartitionPolicy says what to do with PARTITIONED tasks.
type PartitionPolicy struct {
	Reschedule bool  `json:"reschedule"`
	DelaySecs  int64 `json:"delay_secs"`
}

// Metadata is a key/value pair.
type Metadata struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// SlaPolicy is one of the three SLA policies (exactly one is set).
type SlaPolicy struct {
	Count       *CountSlaPolicy
	Percentage  *PercentageSlaPolicy
	Coordinator *CoordinatorSlaPolicy
}

// CountSlaPolicy keeps count instances up for duration_secs.
type CountSlaPolicy struct {
	Count        int `json:"count"`
	DurationSecs int `json:"duration_secs"`
}

// PercentageSlaPolicy keeps a percentage of instances up.
type PercentageSlaPolicy struct {
	Percentage   float64 `json:"percentage"`
	DurationSecs int     `json:"duration_secs"`
}

// CoordinatorSlaPolicy asks a coordinator before draining.
type CoordinatorSlaPolicy struct {
	CoordinatorURL string `json:"coordinator_url"`
	StatusKey      string `json:"status_key"`
}

// UnmarshalJSON tells the policies apart by their fields.
func (p *SlaPolicy) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	switch {
	case keys["coordinator_url"] != nil:
		p.Coordinator = new(CoordinatorSlaPolicy)
		return json.Unmarshal(b, p.Coordinator)
	case keys["percentage"] != nil:
		p.Percentage = new(PercentageSlaPolicy)
		return json.Unmarshal(b, p.Percentage)
	}
	p.Count = new(CountSlaPolicy)
	return json.Unmarshal(b, p.Count)
}

// MarshalJSON writes the chosen policy.
func (p SlaPolicy) MarshalJSON() ([]byte, error) {
	switch {
	case p.Coordinator != nil:
		return json.Marshal(p.Coordinator)
	case p.Percentage != nil:
		return json.Marshal(p.Percentage)
	}
	return json.Marshal(p.Count)
}

// Container is the job's container: Docker, or Mesos (unified) with an
// image and volumes. Container(docker=Docker(...)) becomes Docker.
type Container struct {
	Docker *Docker
	Mesos  *Mesos
}

// Docker runs the task in a Docker container.
type Docker struct {
	Image      string      `json:"image"`
	Parameters []Parameter `json:"parameters"`
}

// Parameter is a docker run parameter.
type Parameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Mesos is the Mesos unified containerizer with an optional image.
type Mesos struct {
	Image   *Image   `json:"image,omitempty"`
	Volumes []Volume `json:"volumes"`
}

// Image is an AppC or Docker image for the Mesos containerizer.
type Image struct {
	Name    string `json:"name"`
	ImageID string `json:"image_id,omitempty"` // AppcImage
	Tag     string `json:"tag,omitempty"`      // DockerImage
}

// Volume is a host path mounted into the container.
type Volume struct {
	ContainerPath string `json:"container_path"`
	HostPath      string `json:"host_path"`
	Mode          string `json:"mode"`
}

// UnmarshalJSON tells the container kinds apart by their fields.
func (c *Container) UnmarshalJSON(b []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if d := keys["docker"]; d != nil {
		c.Docker = new(Docker)
		return json.Unmarshal(d, c.Docker)
	}
	if img := keys["image"]; len(img) > 0 && img[0] == '"' {
		c.Docker = new(Docker)
		return json.Unmarshal(b, c.Docker)
	}
	c.Mesos = new(Mesos)
	return json.Unmarshal(b, c.Mesos)
}

// MarshalJSON writes the chosen container.
func (c Container) MarshalJSON() ([]byte, error) {
	if c.Docker != nil {
		return json.Marshal(c.Docker)
	}
	return json.Marshal(c.Mesos)
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

// MaxFailuresOrDefault of the task (default 1).
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
