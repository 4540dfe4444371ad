package api

import "fmt"

// Types of the admin, quota, maintenance and summary RPCs, with the field
// names of Aurora's api.thrift.

// InstanceKey names one instance of a job (addInstances).
type InstanceKey struct {
	JobKey     JobKey `json:"jobKey"`
	InstanceID int    `json:"instanceId"`
}

// ResourceAggregate is an amount of resources: a role's quota or what its
// tasks consume. Aurora's newer clients also send the amounts as a set of
// Resource; Normalize folds those into the scalar fields.
type ResourceAggregate struct {
	NumCpus   float64    `json:"numCpus"`
	RAMMb     int64      `json:"ramMb"`
	DiskMb    int64      `json:"diskMb"`
	Resources []Resource `json:"resources,omitempty"`
}

// Normalize returns the aggregate with the scalar fields taken from
// Resources when it has any, and Resources rebuilt from the scalars, so
// that old and new readers see the same amounts.
func (a ResourceAggregate) Normalize() ResourceAggregate {
	if len(a.Resources) > 0 {
		c := TaskConfig{Resources: a.Resources}
		a.NumCpus, a.RAMMb, a.DiskMb, _ = c.Scalars()
	}
	cpus, ram, disk := a.NumCpus, a.RAMMb, a.DiskMb
	a.Resources = []Resource{{NumCpus: &cpus}, {RAMMb: &ram}, {DiskMb: &disk}}
	return a
}

// Add returns a + b (scalars only).
func (a ResourceAggregate) Add(b ResourceAggregate) ResourceAggregate {
	return ResourceAggregate{NumCpus: a.NumCpus + b.NumCpus, RAMMb: a.RAMMb + b.RAMMb, DiskMb: a.DiskMb + b.DiskMb}
}

func (a ResourceAggregate) String() string {
	return fmt.Sprintf("numCpus %g, ramMb %d, diskMb %d", a.NumCpus, a.RAMMb, a.DiskMb)
}

// GetQuotaResult is a role's quota and what its active tasks consume, by
// pool: production or not, shared or on dedicated hosts.
type GetQuotaResult struct {
	Quota                       ResourceAggregate `json:"quota"`
	ProdSharedConsumption       ResourceAggregate `json:"prodSharedConsumption"`
	NonProdSharedConsumption    ResourceAggregate `json:"nonProdSharedConsumption"`
	ProdDedicatedConsumption    ResourceAggregate `json:"prodDedicatedConsumption"`
	NonProdDedicatedConsumption ResourceAggregate `json:"nonProdDedicatedConsumption"`
}

// Maintenance modes (api.thrift MaintenanceMode), by name.
const (
	ModeNone      = "NONE"
	ModeScheduled = "SCHEDULED"
	ModeDraining  = "DRAINING"
	ModeDrained   = "DRAINED"
)

// Hosts names agent hosts.
type Hosts struct {
	HostNames []string `json:"hostNames"`
}

// HostStatus is a host's maintenance mode.
type HostStatus struct {
	Host string `json:"host"`
	Mode string `json:"mode"`
}

// StartMaintenanceResult is the hosts' modes after startMaintenance.
type StartMaintenanceResult struct {
	Statuses []HostStatus `json:"statuses"`
}

// DrainHostsResult is the hosts' modes after drainHosts.
type DrainHostsResult struct {
	Statuses []HostStatus `json:"statuses"`
}

// MaintenanceStatusResult is the hosts' modes.
type MaintenanceStatusResult struct {
	Statuses []HostStatus `json:"statuses"`
}

// EndMaintenanceResult is the hosts' modes after endMaintenance.
type EndMaintenanceResult struct {
	Statuses []HostStatus `json:"statuses"`
}

// RoleSummary counts a role's jobs.
type RoleSummary struct {
	Role         string `json:"role"`
	JobCount     int    `json:"jobCount"`
	CronJobCount int    `json:"cronJobCount"`
}

// RoleSummaryResult lists role summaries.
type RoleSummaryResult struct {
	Summaries []RoleSummary `json:"summaries"`
}

// PendingReason says why a PENDING task was not placed.
type PendingReason struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
}

// GetPendingReasonResult lists pending reasons.
type GetPendingReasonResult struct {
	Reasons []PendingReason `json:"reasons"`
}

// TierConfig is a tier and its settings ("preemptible", "revocable":
// "true" or "false").
type TierConfig struct {
	Name     string            `json:"name"`
	Settings map[string]string `json:"settings"`
}

// GetTierConfigResult is the default tier and every tier.
type GetTierConfigResult struct {
	DefaultTierName string       `json:"defaultTierName"`
	Tiers           []TierConfig `json:"tiers"`
}

// ExplicitReconciliationSettings tunes triggerExplicitTaskReconciliation.
type ExplicitReconciliationSettings struct {
	BatchSize *int `json:"batchSize,omitempty"`
}
