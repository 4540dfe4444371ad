package match

import (
	"math"
	"slices"
	"time"
)

// MaintenanceMode is Aurora's host maintenance mode (api.thrift
// MaintenanceMode). The empty string means NONE.
type MaintenanceMode string

// Maintenance modes. Hosts in DRAINING or DRAINED take no new tasks; SCHEDULED
// hosts take tasks but only when hosts in no maintenance do not fit.
const (
	ModeNone      MaintenanceMode = "NONE"
	ModeScheduled MaintenanceMode = "SCHEDULED"
	ModeDraining  MaintenanceMode = "DRAINING"
	ModeDrained   MaintenanceMode = "DRAINED"
)

// rank orders offers the way Aurora's OfferOrderBuilder does: NONE, SCHEDULED,
// DRAINING, DRAINED. Unknown modes count as NONE.
func (m MaintenanceMode) rank() int {
	switch m {
	case ModeScheduled:
		return 1
	case ModeDraining:
		return 2
	case ModeDrained:
		return 3
	}
	return 0
}

// Range is an inclusive range of ports, as in a Mesos ranges resource.
type Range struct {
	Begin, End uint64
}

// Offer is a Mesos resource offer together with the Aurora host attributes of
// its agent. Of the revocable resources only CPUs are modelled, as Aurora
// does without -enable_revocable_ram: a revocable task takes its CPUs from
// RevocableCPUs and everything else from the non-revocable resources; any
// other task never uses RevocableCPUs.
type Offer struct {
	ID, AgentID, Hostname string
	// Attributes are the agent's text attributes (Mesos scalar attributes
	// converted to text by the caller), name to values. A "host" attribute
	// equal to Hostname is implied when the agent does not declare one.
	Attributes map[string][]string
	CPUs       float64
	MemMB      float64
	DiskMB     float64
	Ports      []Range
	// RevocableCPUs are the offer's revocable CPUs (Mesos resources with
	// revocable set, offered to frameworks with REVOCABLE_RESOURCES).
	RevocableCPUs float64
	// Maintenance is the host's Aurora maintenance mode.
	Maintenance MaintenanceMode
	// UnavailabilityStart is the start of a Mesos maintenance window on the
	// agent (the offer's unavailability); zero when there is none.
	UnavailabilityStart time.Time
}

// JobKey identifies an Aurora job.
type JobKey struct {
	Role, Environment, Name string
}

// String returns "role/environment/name".
func (k JobKey) String() string { return k.Role + "/" + k.Environment + "/" + k.Name }

// Request is a pending task to place. CPUs, MemMB and DiskMB are the task's own
// resources; the matcher adds the executor Overhead.
type Request struct {
	TaskID   string
	Job      JobKey
	Instance int
	CPUs     float64
	MemMB    float64
	DiskMB   float64
	// PortNames are the task's named ports; duplicates count once.
	PortNames   []string
	Constraints []Constraint
	// Revocable: the task's tier is revocable. Its CPUs, executor overhead
	// included, come from the offer's RevocableCPUs.
	Revocable bool
}

// Overhead is what the executor adds to every task's resources.
type Overhead struct {
	CPUs, MemMB float64
}

var (
	// AuroraExecutorOverhead is Aurora's default for the Thermos executor
	// (-thermos_executor_cpu 0.25, -thermos_executor_ram 128MB).
	AuroraExecutorOverhead = Overhead{CPUs: 0.25, MemMB: 128}
	// DefaultOverhead is aurorabox's default: its executor is a small Go
	// process.
	DefaultOverhead = Overhead{CPUs: 0.01, MemMB: 32}
)

// DefaultUnavailabilityThreshold is Aurora's -unavailability_threshold: a host
// whose Mesos maintenance starts within this long is treated as draining.
const DefaultUnavailabilityThreshold = 6 * time.Minute

// Placed is an active task of a job (assigned, starting, running, or being
// killed or restarted: Aurora's SLAVE_ASSIGNED_STATES) and the attributes of
// the host it is on, for limit constraints.
type Placed struct {
	Hostname   string
	Attributes map[string][]string
}

// Assignment places one task on one offer.
type Assignment struct {
	TaskID   string
	OfferID  string
	AgentID  string
	Hostname string
	// Ports maps each of the task's port names to the port it got.
	Ports map[string]int
}

// scale is the fixed point of Mesos scalar resources: three decimals. The
// matcher keeps amounts as integer thousandths so that packing many tasks
// onto one offer cannot drift.
const scale = 1000

func fixed(x float64) int64 { return int64(math.Round(x * scale)) }

// hostAttributes returns the attributes with values sorted and deduplicated
// (Aurora's are sets) and the implied "host" attribute added.
func hostAttributes(hostname string, attrs map[string][]string) map[string][]string {
	out := make(map[string][]string, len(attrs)+1)
	for name, values := range attrs {
		v := slices.Clone(values)
		slices.Sort(v)
		out[name] = slices.Compact(v)
	}
	if _, ok := out[hostAttribute]; !ok {
		out[hostAttribute] = []string{hostname}
	}
	return out
}

// hostAttribute is the attribute every host has (see hostAttributes).
const hostAttribute = "host"
