// Package status is the contract of `aurorabox status --json` and of the
// supervisor's control socket: the appliance's state, its supervisor's and
// each component's. The supervisor (appliance, appliance/supervise) writes
// it; the status command, the TUI and the e2e tests read it.
package status

import "time"

// Version is the schema version of Appliance. Fields are only ever added;
// a change that breaks readers bumps it.
const Version = 1

// Appliance is what `aurorabox status --json` prints.
type Appliance struct {
	Version    int         `json:"version"`
	Running    bool        `json:"running"`
	Healthy    bool        `json:"healthy"`
	Cluster    string      `json:"cluster,omitempty"`
	DataDir    string      `json:"data_dir"`
	Supervisor *Supervisor `json:"supervisor,omitempty"`
	// Isolation is how the agent isolates task containers: "cgroups-v1",
	// "cgroups-v2" or "none" (then IsolationReason says why).
	Isolation       string `json:"isolation,omitempty"`
	IsolationReason string `json:"isolation_reason,omitempty"`
	// Auth is how the scheduler's API is protected: "basic" (Credentials
	// is the credential file) or "none".
	Auth        string `json:"auth,omitempty"`
	Credentials string `json:"credentials,omitempty"`
	// AllowRootTasks: jobs may run as uid 0.
	AllowRootTasks bool `json:"allow_root_tasks,omitempty"`
	// Warnings are settings that weaken the appliance's security.
	Warnings   []string    `json:"warnings,omitempty"`
	Components []Component `json:"components"`
}

// Supervisor describes the `up` process itself.
type Supervisor struct {
	PID           int       `json:"pid"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Ready         bool      `json:"ready"` // all components passed their readiness probes
}

// Health of a component.
type Health string

// Health values, as shown by `aurorabox status`.
const (
	Starting  Health = "starting"  // started, readiness probe not yet passed
	Healthy   Health = "healthy"   // last probe passed
	Unhealthy Health = "unhealthy" // last probe failed, or down and waiting to restart
	Stopped   Health = "stopped"   // stopped on purpose
)

// Component is a component's state, as reported by `aurorabox status --json`.
type Component struct {
	Name          string    `json:"name"`
	PID           int       `json:"pid"`
	Address       string    `json:"address"`
	Health        Health    `json:"health"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Restarts      int       `json:"restarts"`
	Log           string    `json:"log"`
	LastError     string    `json:"last_error,omitempty"`
}
