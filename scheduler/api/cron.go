package api

// Types of the cron and SLA-aware maintenance RPCs and endpoints, with the
// field names of Aurora's api.thrift where it has them.

// CronJob is a scheduled cron job as /cron and the UI show it (not an
// Aurora struct: Aurora's /cron has only the schedules).
type CronJob struct {
	Job                 JobKey `json:"job"`
	CronSchedule        string `json:"cronSchedule"`
	CronCollisionPolicy string `json:"cronCollisionPolicy"` // the effective policy
	InstanceCount       int    `json:"instanceCount"`
	// NextRunMs is the next firing in ms since the epoch; absent when the
	// schedule never fires.
	NextRunMs int64 `json:"nextRunMs,omitempty"`
	// LastFiredMs is the scheduled instant of the last firing; absent
	// before the first.
	LastFiredMs int64 `json:"lastFiredMs,omitempty"`
	ActiveTasks int   `json:"activeTasks"`
	// LaunchPending: a KILL_EXISTING firing waits for the previous run's
	// tasks to end before launching.
	LaunchPending bool `json:"launchPending,omitempty"`
}

// CountSlaPolicy keeps count instances RUNNING for durationSecs.
type CountSlaPolicy struct {
	Count        int64 `json:"count"`
	DurationSecs int64 `json:"durationSecs"`
}

// PercentageSlaPolicy keeps percentage % of the instances RUNNING for
// durationSecs.
type PercentageSlaPolicy struct {
	Percentage   float64 `json:"percentage"`
	DurationSecs int64   `json:"durationSecs"`
}

// CoordinatorSlaPolicy asks an HTTP coordinator whether a task may go;
// statusKey (default "drain") names the boolean in its answer.
type CoordinatorSlaPolicy struct {
	CoordinatorURL string `json:"coordinatorUrl"`
	StatusKey      string `json:"statusKey,omitempty"`
}

// SlaPolicy is one of the three policies (a Thrift union), as in
// TaskConfig.slaPolicy and slaDrainHosts' defaultSlaPolicy.
type SlaPolicy struct {
	CountSlaPolicy       *CountSlaPolicy       `json:"countSlaPolicy,omitempty"`
	PercentageSlaPolicy  *PercentageSlaPolicy  `json:"percentageSlaPolicy,omitempty"`
	CoordinatorSlaPolicy *CoordinatorSlaPolicy `json:"coordinatorSlaPolicy,omitempty"`
}

// Set counts the policies set: a valid union has exactly one.
func (p SlaPolicy) Set() int {
	n := 0
	if p.CountSlaPolicy != nil {
		n++
	}
	if p.PercentageSlaPolicy != nil {
		n++
	}
	if p.CoordinatorSlaPolicy != nil {
		n++
	}
	return n
}
