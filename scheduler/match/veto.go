package match

// VetoType is the kind of a Veto, Aurora's SchedulingFilter.VetoType.
type VetoType int

// Veto types, from the weakest to the strongest.
const (
	// InsufficientResources: the offer lacks CPU, RAM, disk or ports.
	InsufficientResources VetoType = iota + 1
	// ConstraintMismatch: a value constraint is not met, or the host lacks
	// the attribute of a limit constraint.
	ConstraintMismatch
	// LimitNotSatisfied: the job already has the limit of tasks on hosts
	// with this attribute value.
	LimitNotSatisfied
	// Maintenance: the host is draining or drained.
	Maintenance
	// DedicatedMismatch: the host is dedicated and the task is not.
	DedicatedMismatch
)

var vetoTypeNames = [...]string{
	InsufficientResources: "INSUFFICIENT_RESOURCES",
	ConstraintMismatch:    "CONSTRAINT_MISMATCH",
	LimitNotSatisfied:     "LIMIT_NOT_SATISFIED",
	Maintenance:           "MAINTENANCE",
	DedicatedMismatch:     "DEDICATED_CONSTRAINT_MISMATCH",
}

// String returns Aurora's name of the veto type.
func (t VetoType) String() string {
	if t > 0 && int(t) < len(vetoTypeNames) {
		return vetoTypeNames[t]
	}
	return "UNKNOWN"
}

// Static reports whether a veto of this type holds whatever else happens in
// the cluster (Aurora's VetoGroup.STATIC): only a limit can be lifted by other
// tasks of the job going away.
func (t VetoType) Static() bool { return t != LimitNotSatisfied }

// Veto scores, Aurora's: a stronger kind of veto always outweighs any number
// of weaker ones that can occur together.
const (
	resourceScore    = 1_000
	constraintScore  = 10_000
	limitScore       = 10_000
	maintenanceScore = 100_000
	dedicatedScore   = 1_000_000
)

// Veto is a reason why a task cannot go onto an offer. Reason is Aurora's
// text; Score ranks vetoes for the nearest fit (lower is nearer).
type Veto struct {
	Type   VetoType
	Reason string
	Score  int
}

// String returns the reason.
func (v Veto) String() string { return v.Reason }

func dedicatedVeto() Veto {
	return Veto{Type: DedicatedMismatch, Reason: "Host is dedicated", Score: dedicatedScore}
}

// maintenanceVeto takes the mode in lower case, "draining" or "drained".
func maintenanceVeto(mode string) Veto {
	return Veto{Type: Maintenance, Reason: "Host " + mode + " for maintenance", Score: maintenanceScore}
}

func constraintVeto(name string) Veto {
	return Veto{Type: ConstraintMismatch, Reason: "Constraint not satisfied: " + name, Score: constraintScore}
}

func limitVeto(name string) Veto {
	return Veto{Type: LimitNotSatisfied, Reason: "Limit not satisfied: " + name, Score: limitScore}
}

// resource describes one resource vector: Aurora's name and the scaling range
// (a typical agent's amount) that turns a shortfall into a score.
type resource struct {
	reason       string
	scalingRange int
}

var (
	resCPU   = resource{"Insufficient: CPU", 16}
	resRAM   = resource{"Insufficient: RAM", 24 * 1024}
	resDisk  = resource{"Insufficient: disk", 450 * 1024}
	resPorts = resource{"Insufficient: ports", 1000}
)

// resourceVeto scores a shortfall as Aurora does: proportionally to the
// scaling range, at most the full resource score.
func resourceVeto(r resource, short float64) Veto {
	score := min(resourceScore, int(resourceScore*short)/r.scalingRange)
	return Veto{Type: InsufficientResources, Reason: r.reason, Score: score}
}

func totalScore(vetoes []Veto) int {
	total := 0
	for _, v := range vetoes {
		total += v.Score
	}
	return total
}
