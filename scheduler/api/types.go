// Package api holds the Aurora scheduler API's data types, with the field
// names of Aurora's Thrift IDL (api.thrift) as JSON keys, so that the JSON
// our /api speaks maps one-to-one onto Aurora's structs. Thrift unions
// (Resource, TaskConstraint, Result) are structs with one field set.
package api

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// JobKey names a job.
type JobKey struct {
	Role        string `json:"role"`
	Environment string `json:"environment"`
	Name        string `json:"name"`
}

func (k JobKey) String() string { return k.Role + "/" + k.Environment + "/" + k.Name }

// goodIdentifier is Aurora's GOOD_IDENTIFIER_PATTERN for roles,
// environments and job names.
var goodIdentifier = regexp.MustCompile(`^[\w\-\.]+$`)

// maxIdentifierLength is Aurora's MAX_IDENTIFIER_LENGTH.
const maxIdentifierLength = 255

// Validate checks the key's parts as Aurora's JobKeys.isValid does.
func (k JobKey) Validate() error {
	for _, p := range []struct{ what, v string }{{"role", k.Role}, {"environment", k.Environment}, {"name", k.Name}} {
		if p.v == "" {
			return fmt.Errorf("job key %q: %s must not be empty", k, p.what)
		}
		if len(p.v) > maxIdentifierLength {
			return fmt.Errorf("job key %q: %s longer than %d characters", k, p.what, maxIdentifierLength)
		}
		if !goodIdentifier.MatchString(p.v) {
			return fmt.Errorf("job key %q: %s %q may only contain letters, digits, '_', '-' and '.'", k, p.what, p.v)
		}
	}
	return nil
}

// Identity is a task's owner.
type Identity struct {
	User string `json:"user"`
}

// Resource is one of a task's resources (a Thrift union).
type Resource struct {
	NumCpus   *float64 `json:"numCpus,omitempty"`
	RAMMb     *int64   `json:"ramMb,omitempty"`
	DiskMb    *int64   `json:"diskMb,omitempty"`
	NamedPort *string  `json:"namedPort,omitempty"`
	NumGpus   *int64   `json:"numGpus,omitempty"`
}

// ValueConstraint requires (or, negated, forbids) attribute values.
type ValueConstraint struct {
	Negated bool     `json:"negated"`
	Values  []string `json:"values"`
}

// LimitConstraint caps a job's tasks per attribute value.
type LimitConstraint struct {
	Limit int `json:"limit"`
}

// TaskConstraint is a value or a limit constraint.
type TaskConstraint struct {
	Value *ValueConstraint `json:"value,omitempty"`
	Limit *LimitConstraint `json:"limit,omitempty"`
}

// Constraint applies a TaskConstraint to an agent attribute.
type Constraint struct {
	Name       string         `json:"name"`
	Constraint TaskConstraint `json:"constraint"`
}

// ExecutorConfig names the executor and carries its configuration.
type ExecutorConfig struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// Metadata is a key/value shown in the UI.
type Metadata struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// PartitionPolicy says what to do with a PARTITIONED task.
type PartitionPolicy struct {
	Reschedule bool  `json:"reschedule"`
	DelaySecs  int64 `json:"delaySecs"`
}

// TaskConfig is the configuration of a job's tasks.
type TaskConfig struct {
	Job             JobKey           `json:"job"`
	Owner           Identity         `json:"owner"`
	IsService       bool             `json:"isService"`
	Priority        int              `json:"priority"`
	MaxTaskFailures int              `json:"maxTaskFailures"`
	Production      bool             `json:"production"`
	Tier            string           `json:"tier,omitempty"`
	Resources       []Resource       `json:"resources"`
	Constraints     []Constraint     `json:"constraints"`
	ContactEmail    string           `json:"contactEmail,omitempty"`
	ExecutorConfig  ExecutorConfig   `json:"executorConfig"`
	Metadata        []Metadata       `json:"metadata,omitempty"`
	PartitionPolicy *PartitionPolicy `json:"partitionPolicy,omitempty"`
	// Kept as given, for the executor and the UI: Aurora's SlaPolicy,
	// Container (mesos image and volumes, or docker), fetcher URIs and task
	// links; the scheduler does not act on them yet.
	SlaPolicy        json.RawMessage `json:"slaPolicy,omitempty"`
	Container        json.RawMessage `json:"container,omitempty"`
	MesosFetcherURIs json.RawMessage `json:"mesosFetcherUris,omitempty"`
	TaskLinks        json.RawMessage `json:"taskLinks,omitempty"`
	// Deprecated scalar fields Aurora still fills for old readers (and our
	// executor reads).
	NumCpus float64 `json:"numCpus"`
	RAMMb   int64   `json:"ramMb"`
	DiskMb  int64   `json:"diskMb"`
}

// Scalars returns the task's cpus, RAM and disk, and its port names.
func (c TaskConfig) Scalars() (cpus float64, ramMb, diskMb int64, ports []string) {
	for _, r := range c.Resources {
		switch {
		case r.NumCpus != nil:
			cpus += *r.NumCpus
		case r.RAMMb != nil:
			ramMb += *r.RAMMb
		case r.DiskMb != nil:
			diskMb += *r.DiskMb
		case r.NamedPort != nil:
			ports = append(ports, *r.NamedPort)
		}
	}
	return cpus, ramMb, diskMb, ports
}

// JobConfiguration is a job.
type JobConfiguration struct {
	Key                 JobKey     `json:"key"`
	Owner               Identity   `json:"owner"`
	CronSchedule        string     `json:"cronSchedule,omitempty"`
	CronCollisionPolicy string     `json:"cronCollisionPolicy,omitempty"`
	TaskConfig          TaskConfig `json:"taskConfig"`
	InstanceCount       int        `json:"instanceCount"`
}

// AssignedTask is a task bound to an agent (or about to be).
type AssignedTask struct {
	TaskID        string         `json:"taskId"`
	SlaveID       string         `json:"slaveId,omitempty"`
	SlaveHost     string         `json:"slaveHost,omitempty"`
	Task          TaskConfig     `json:"task"`
	AssignedPorts map[string]int `json:"assignedPorts"`
	InstanceID    int            `json:"instanceId"`
}

// TaskEvent is one entry of a task's history.
type TaskEvent struct {
	Timestamp int64  `json:"timestamp"` // ms since the epoch
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
	Scheduler string `json:"scheduler,omitempty"`
}

// ScheduledTask is a task and its history.
type ScheduledTask struct {
	AssignedTask     AssignedTask `json:"assignedTask"`
	Status           string       `json:"status"`
	FailureCount     int          `json:"failureCount"`
	TimesPartitioned int          `json:"timesPartitioned"`
	TaskEvents       []TaskEvent  `json:"taskEvents"`
	AncestorID       string       `json:"ancestorId,omitempty"`
}

// TaskQuery selects tasks; empty fields match everything.
type TaskQuery struct {
	Role        string   `json:"role,omitempty"`
	Environment string   `json:"environment,omitempty"`
	JobName     string   `json:"jobName,omitempty"`
	TaskIDs     []string `json:"taskIds,omitempty"`
	Statuses    []string `json:"statuses,omitempty"`
	InstanceIDs []int    `json:"instanceIds,omitempty"`
	SlaveHosts  []string `json:"slaveHosts,omitempty"`
	JobKeys     []JobKey `json:"jobKeys,omitempty"`
	Offset      int      `json:"offset,omitempty"`
	Limit       int      `json:"limit,omitempty"`
}

// Matches reports whether t is selected by q (ignoring offset and limit).
func (q TaskQuery) Matches(t ScheduledTask) bool {
	k := t.AssignedTask.Task.Job
	if q.Role != "" && q.Role != k.Role || q.Environment != "" && q.Environment != k.Environment || q.JobName != "" && q.JobName != k.Name {
		return false
	}
	if len(q.JobKeys) > 0 && !contains(q.JobKeys, k) {
		return false
	}
	if len(q.TaskIDs) > 0 && !contains(q.TaskIDs, t.AssignedTask.TaskID) {
		return false
	}
	if len(q.Statuses) > 0 && !contains(q.Statuses, t.Status) {
		return false
	}
	if len(q.InstanceIDs) > 0 && !contains(q.InstanceIDs, t.AssignedTask.InstanceID) {
		return false
	}
	if len(q.SlaveHosts) > 0 && !contains(q.SlaveHosts, t.AssignedTask.SlaveHost) {
		return false
	}
	return true
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ResponseCode is Aurora's ResponseCode; JSON carries the name.
type ResponseCode string

// Response codes.
const (
	InvalidRequest   ResponseCode = "INVALID_REQUEST"
	OK               ResponseCode = "OK"
	Error            ResponseCode = "ERROR"
	Warning          ResponseCode = "WARNING"
	AuthFailed       ResponseCode = "AUTH_FAILED"
	JobUpdatingError ResponseCode = "JOB_UPDATING_ERROR"
	ErrorTransient   ResponseCode = "ERROR_TRANSIENT"
)

// ResponseDetail is one message of a Response.
type ResponseDetail struct {
	Message string `json:"message"`
}

// ServerInfo describes the cluster.
type ServerInfo struct {
	ClusterName    string `json:"clusterName"`
	StatsURLPrefix string `json:"statsUrlPrefix,omitempty"`
}

// Response is what every RPC returns.
type Response struct {
	ResponseCode ResponseCode     `json:"responseCode"`
	ServerInfo   ServerInfo       `json:"serverInfo"`
	Result       *Result          `json:"result,omitempty"`
	Details      []ResponseDetail `json:"details,omitempty"`
}

// Result is the RPC-specific part of a Response (a Thrift union).
type Result struct {
	ScheduleStatusResult *ScheduleStatusResult `json:"scheduleStatusResult,omitempty"`
	GetJobsResult        *GetJobsResult        `json:"getJobsResult,omitempty"`
	JobSummaryResult     *JobSummaryResult     `json:"jobSummaryResult,omitempty"`
	ConfigSummaryResult  *ConfigSummaryResult  `json:"configSummaryResult,omitempty"`
	PopulateJobResult    *PopulateJobResult    `json:"populateJobResult,omitempty"`
	ListBackupsResult    *ListBackupsResult    `json:"listBackupsResult,omitempty"`
	// Admin, quota, maintenance and summary results (see admin.go).
	GetQuotaResult          *GetQuotaResult          `json:"getQuotaResult,omitempty"`
	StartMaintenanceResult  *StartMaintenanceResult  `json:"startMaintenanceResult,omitempty"`
	DrainHostsResult        *DrainHostsResult        `json:"drainHostsResult,omitempty"`
	MaintenanceStatusResult *MaintenanceStatusResult `json:"maintenanceStatusResult,omitempty"`
	EndMaintenanceResult    *EndMaintenanceResult    `json:"endMaintenanceResult,omitempty"`
	RoleSummaryResult       *RoleSummaryResult       `json:"roleSummaryResult,omitempty"`
	GetPendingReasonResult  *GetPendingReasonResult  `json:"getPendingReasonResult,omitempty"`
	GetTierConfigResult     *GetTierConfigResult     `json:"getTierConfigResult,omitempty"`
	// Job update results (see update.go).
	StartJobUpdateResult        *StartJobUpdateResult        `json:"startJobUpdateResult,omitempty"`
	GetJobUpdateSummariesResult *GetJobUpdateSummariesResult `json:"getJobUpdateSummariesResult,omitempty"`
	GetJobUpdateDetailsResult   *GetJobUpdateDetailsResult   `json:"getJobUpdateDetailsResult,omitempty"`
	PulseJobUpdateResult        *PulseJobUpdateResult        `json:"pulseJobUpdateResult,omitempty"`
	GetJobUpdateDiffResult      *GetJobUpdateDiffResult      `json:"getJobUpdateDiffResult,omitempty"`
}

// ScheduleStatusResult lists tasks.
type ScheduleStatusResult struct {
	Tasks []ScheduledTask `json:"tasks"`
}

// GetJobsResult lists job configurations.
type GetJobsResult struct {
	Configs []JobConfiguration `json:"configs"`
}

// JobStats counts a job's tasks by state group.
type JobStats struct {
	ActiveTaskCount   int `json:"activeTaskCount"`
	FinishedTaskCount int `json:"finishedTaskCount"`
	FailedTaskCount   int `json:"failedTaskCount"`
	PendingTaskCount  int `json:"pendingTaskCount"`
}

// JobSummary is a job with its stats.
type JobSummary struct {
	Job   JobConfiguration `json:"job"`
	Stats JobStats         `json:"stats"`
	// NextCronRunMs is a cron job's next firing (ms since the epoch).
	NextCronRunMs *int64 `json:"nextCronRunMs,omitempty"`
}

// JobSummaryResult lists job summaries.
type JobSummaryResult struct {
	Summaries []JobSummary `json:"summaries"`
}

// Range is an inclusive range of instance ids.
type Range struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// ConfigGroup is a TaskConfig and the instances running it.
type ConfigGroup struct {
	Config    TaskConfig `json:"config"`
	Instances []Range    `json:"instances"`
}

// ConfigSummary is a job's distinct configurations.
type ConfigSummary struct {
	Key    JobKey        `json:"key"`
	Groups []ConfigGroup `json:"groups"`
}

// ConfigSummaryResult wraps a ConfigSummary.
type ConfigSummaryResult struct {
	Summary ConfigSummary `json:"summary"`
}

// PopulateJobResult is a validated, populated TaskConfig.
type PopulateJobResult struct {
	TaskConfig TaskConfig `json:"taskConfig"`
}

// ListBackupsResult names the backups.
type ListBackupsResult struct {
	Backups []string `json:"backups"`
}
