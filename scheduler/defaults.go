package scheduler

import "time"

// Defaults of the settings that no timing profile changes: New applies
// them to a Config that leaves them zero, and `aurorabox scheduler` shows
// them as its flags' defaults, so that each is written once.
const (
	DefaultFailoverTimeout             = 21 * 24 * time.Hour // Aurora's -framework_failover_timeout
	DefaultMaxTasksPerJob              = 4000                // -max_tasks_per_job
	DefaultMaxUpdateInstanceFailures   = 20000               // -max_update_instance_failures
	DefaultUpdateHistoryPerJob         = 10                  // -job_update_history_per_job_threshold
	DefaultUpdateReservation           = 3 * time.Minute     // how long an update keeps an agent for an instance
	DefaultHostMaintenancePollInterval = time.Minute         // -host_maintenance_polling_interval
	DefaultSlaAwareKillRetry           = time.Minute         // -sla_aware_kill_retry_min_delay
)

// SLA checks of host drains by timing profile (-min_required_instances_for
// _sla_check): jobs with fewer active tasks drain without one. Aurora's
// default is 20; its Vagrant devcluster ran with 2.
const (
	DevSlaMinRequiredInstances    = 2
	AuroraSlaMinRequiredInstances = 20
)
