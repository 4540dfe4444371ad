package update

import (
	"fmt"
	"sort"
)

// Status is a job update's status (Aurora's JobUpdateStatus); its text
// form is the Thrift name.
type Status int

// The statuses, with Aurora's numbers.
const (
	RollingForward           Status = 0
	RollingBack              Status = 1
	RollForwardPaused        Status = 2
	RollBackPaused           Status = 3
	RolledForward            Status = 4
	RolledBack               Status = 5
	Aborted                  Status = 6
	Error                    Status = 7
	Failed                   Status = 8
	RollForwardAwaitingPulse Status = 9
	RollBackAwaitingPulse    Status = 10
)

var statusNames = map[Status]string{
	RollingForward: "ROLLING_FORWARD", RollingBack: "ROLLING_BACK",
	RollForwardPaused: "ROLL_FORWARD_PAUSED", RollBackPaused: "ROLL_BACK_PAUSED",
	RolledForward: "ROLLED_FORWARD", RolledBack: "ROLLED_BACK", Aborted: "ABORTED", Error: "ERROR", Failed: "FAILED",
	RollForwardAwaitingPulse: "ROLL_FORWARD_AWAITING_PULSE", RollBackAwaitingPulse: "ROLL_BACK_AWAITING_PULSE",
}

// Statuses are all the statuses, by number.
func Statuses() []Status {
	out := make([]Status, 0, len(statusNames))
	for s := range statusNames {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ParseStatus reads a status name.
func ParseStatus(name string) (Status, error) {
	for s, n := range statusNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown job update status %q", name)
}

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) {
	if _, ok := statusNames[s]; !ok {
		return nil, fmt.Errorf("unknown job update status %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a status name.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Active reports whether the update is in progress (Aurora's
// ACTIVE_JOB_UPDATE_STATES): rolling, paused or awaiting a pulse.
func (s Status) Active() bool {
	switch s {
	case RollingForward, RollingBack, RollForwardPaused, RollBackPaused, RollForwardAwaitingPulse, RollBackAwaitingPulse:
		return true
	}
	return false
}

// Terminal reports whether the update has ended.
func (s Status) Terminal() bool { _, ok := statusNames[s]; return ok && !s.Active() }

// Forward reports whether an active status moves toward the new
// configuration (rather than back to the old one).
func (s Status) Forward() bool {
	return s == RollingForward || s == RollForwardPaused || s == RollForwardAwaitingPulse
}

// Rolling reports whether the update is acting on instances.
func (s Status) Rolling() bool { return s == RollingForward || s == RollingBack }

// transitions is the table of reference §7.1 (JobUpdateStateMachine).
var transitions = map[Status][]Status{
	RollingForward:           {RollingBack, RollForwardPaused, RollForwardAwaitingPulse, RolledForward, Aborted, Failed, Error},
	RollingBack:              {RollBackPaused, RollBackAwaitingPulse, RolledBack, Aborted, Error, Failed},
	RollForwardPaused:        {RollingBack, RollingForward, RollForwardAwaitingPulse, Aborted, Error},
	RollBackPaused:           {RollingBack, RollBackAwaitingPulse, Aborted, Error},
	RollForwardAwaitingPulse: {RollingBack, RollingForward, RollForwardPaused, Aborted, Error},
	RollBackAwaitingPulse:    {RollingBack, RollBackPaused, Aborted, Error},
}

// Transitions lists the statuses an update may move to from from.
func Transitions(from Status) []Status { return append([]Status(nil), transitions[from]...) }

// Allowed reports whether an update may move from from to to.
func Allowed(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// paused, awaiting and rolling map a direction's statuses onto each
// other: pause and resume keep the direction.
func pausedOf(s Status) Status {
	if s.Forward() {
		return RollForwardPaused
	}
	return RollBackPaused
}

func awaitingOf(s Status) Status {
	if s.Forward() {
		return RollForwardAwaitingPulse
	}
	return RollBackAwaitingPulse
}

func rollingOf(s Status) Status {
	if s.Forward() {
		return RollingForward
	}
	return RollingBack
}

// InstanceAction is what happened to one instance (Aurora's
// JobUpdateAction), recorded as an instance event; its text form is the
// Thrift name.
type InstanceAction int

// The instance actions, with Aurora's numbers.
const (
	InstanceUpdated        InstanceAction = 1
	InstanceRolledBack     InstanceAction = 2
	InstanceUpdating       InstanceAction = 3
	InstanceRollingBack    InstanceAction = 4
	InstanceUpdateFailed   InstanceAction = 5
	InstanceRollbackFailed InstanceAction = 6
)

var actionNames = map[InstanceAction]string{
	InstanceUpdated: "INSTANCE_UPDATED", InstanceRolledBack: "INSTANCE_ROLLED_BACK",
	InstanceUpdating: "INSTANCE_UPDATING", InstanceRollingBack: "INSTANCE_ROLLING_BACK",
	InstanceUpdateFailed: "INSTANCE_UPDATE_FAILED", InstanceRollbackFailed: "INSTANCE_ROLLBACK_FAILED",
}

func (a InstanceAction) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return fmt.Sprintf("InstanceAction(%d)", int(a))
}

// ParseInstanceAction reads an instance action's name.
func ParseInstanceAction(name string) (InstanceAction, error) {
	for a, n := range actionNames {
		if n == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown job update action %q", name)
}

// MarshalText writes the action's name.
func (a InstanceAction) MarshalText() ([]byte, error) {
	if _, ok := actionNames[a]; !ok {
		return nil, fmt.Errorf("unknown job update action %d", int(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText reads an action's name.
func (a *InstanceAction) UnmarshalText(b []byte) error {
	v, err := ParseInstanceAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
