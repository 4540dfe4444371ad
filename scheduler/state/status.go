package state

import (
	"fmt"
	"strings"
)

// Status is Aurora's ScheduleStatus (api.thrift), with the same numeric
// values. It marshals to JSON as the upper-case name.
type Status int

// The schedule statuses (reference section 5.1).
const (
	Pending     Status = 0  // waiting for an offer
	Starting    Status = 1  // the agent/executor acknowledged the launch
	Running     Status = 2  // its processes started (as 0.11: health checks may still fail it)
	Finished    Status = 3  // exited 0
	Failed      Status = 4  // exited non-zero
	Killed      Status = 5  // terminated by the system
	Killing     Status = 6  // kill requested
	Lost        Status = 7  // presumed gone
	Assigned    Status = 9  // matched to an agent, launch sent
	Init        Status = 11 // not yet persisted
	Restarting  Status = 12 // being restarted by user request
	Preempting  Status = 13 // being preempted
	Throttled   Status = 16 // will be rescheduled, held back for flapping
	Draining    Status = 17 // being restarted due to host maintenance
	Partitioned Status = 18 // agent unreachable, state unknown

	// Deleted is not a ScheduleStatus: it is the state of a task that is not
	// (or no longer) in the store, as in Aurora's TaskStateMachine. A
	// transition to Deleted removes the task. It has no JSON form.
	Deleted Status = -1
)

var statusNames = map[Status]string{
	Pending:     "PENDING",
	Starting:    "STARTING",
	Running:     "RUNNING",
	Finished:    "FINISHED",
	Failed:      "FAILED",
	Killed:      "KILLED",
	Killing:     "KILLING",
	Lost:        "LOST",
	Assigned:    "ASSIGNED",
	Init:        "INIT",
	Restarting:  "RESTARTING",
	Preempting:  "PREEMPTING",
	Throttled:   "THROTTLED",
	Draining:    "DRAINING",
	Partitioned: "PARTITIONED",
}

// statusOrder lists the statuses in the order of the reference's table.
var statusOrder = []Status{
	Init, Throttled, Pending, Assigned, Starting, Running, Finished, Preempting,
	Restarting, Draining, Failed, Killed, Killing, Lost, Partitioned,
}

// Statuses returns every ScheduleStatus (not Deleted), in the order of
// reference section 5.1.
func Statuses() []Status {
	return append([]Status(nil), statusOrder...)
}

// String returns the upper-case name ("RUNNING"), "DELETED" for Deleted, and
// "Status(N)" for a value that is not a status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	if s == Deleted {
		return "DELETED"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Valid reports whether s is one of the ScheduleStatus values (Deleted is not).
func (s Status) Valid() bool {
	_, ok := statusNames[s]
	return ok
}

// ParseStatus parses a ScheduleStatus name. Case is ignored. "DELETED" is
// refused: it is a pseudo-state that is never stored or sent.
func ParseStatus(name string) (Status, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	for s, n := range statusNames {
		if n == up {
			return s, nil
		}
	}
	if up == "DELETED" {
		return 0, fmt.Errorf("DELETED is a pseudo-state, not a schedule status")
	}
	return 0, fmt.Errorf("unknown schedule status %q (want one of %s)", name, strings.Join(names(statusOrder), ", "))
}

func names(ss []Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}

// MarshalText makes JSON carry the status's name.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("cannot marshal %v: not a schedule status", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses a status name (see ParseStatus).
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Active reports whether s is in Aurora's ACTIVE_STATES: the task occupies or
// will occupy its instance (PENDING, THROTTLED, ASSIGNED, STARTING, RUNNING,
// KILLING, PREEMPTING, RESTARTING, DRAINING, PARTITIONED).
func (s Status) Active() bool {
	switch s {
	case Assigned, Draining, Killing, Pending, Preempting, Restarting, Running, Starting, Partitioned, Throttled:
		return true
	}
	return false
}

// NameIn reports whether name, a status as the API carries it (the
// upper-case name, matched exactly), is in set: one of the sets above, as
// a method expression, e.g. NameIn(t.Status, Status.Live). A name that is
// not a status is in no set.
func NameIn(name string, set func(Status) bool) bool {
	for s, n := range statusNames {
		if n == name {
			return set(s)
		}
	}
	return false
}

// SlaveAssigned reports whether s is in Aurora's SLAVE_ASSIGNED_STATES: the
// task has been placed on an agent and not ended (ASSIGNED, STARTING,
// RUNNING, KILLING, PREEMPTING, RESTARTING, DRAINING, PARTITIONED).
func (s Status) SlaveAssigned() bool {
	switch s {
	case Assigned, Draining, Killing, Preempting, Restarting, Running, Partitioned, Starting:
		return true
	}
	return false
}

// Live reports whether s is in Aurora's LIVE_STATES (RUNNING, KILLING,
// PREEMPTING, RESTARTING, DRAINING, PARTITIONED).
func (s Status) Live() bool {
	switch s {
	case Killing, Preempting, Restarting, Draining, Partitioned, Running:
		return true
	}
	return false
}

// Terminal reports whether s is in Aurora's TERMINAL_STATES (FINISHED,
// FAILED, KILLED, LOST).
func (s Status) Terminal() bool {
	switch s {
	case Failed, Finished, Killed, Lost:
		return true
	}
	return false
}

// Transient reports whether a task may stay in s only for the transient task
// state timeout (ASSIGNED, PREEMPTING, RESTARTING, KILLING, DRAINING; Aurora's
// TaskTimeout). STARTING is not transient, as in Aurora's code.
func (s Status) Transient() bool {
	switch s {
	case Assigned, Preempting, Restarting, Killing, Draining:
		return true
	}
	return false
}

// mesosStates is scheduler/base/Conversions.java, extended with the
// partition-aware states (reference section 5.1).
var mesosStates = map[string]Status{
	"TASK_STARTING":         Starting,
	"TASK_STAGING":          Starting,
	"TASK_RUNNING":          Running,
	"TASK_FINISHED":         Finished,
	"TASK_FAILED":           Failed,
	"TASK_KILLING":          Killed, // as Aurora: KILLING is a scheduler-side transient state
	"TASK_KILLED":           Killed,
	"TASK_LOST":             Lost,
	"TASK_ERROR":            Lost,
	"TASK_DROPPED":          Lost,
	"TASK_GONE":             Lost,
	"TASK_GONE_BY_OPERATOR": Lost,
	"TASK_UNREACHABLE":      Partitioned,
	"TASK_UNKNOWN":          Partitioned,
}

// FromMesos maps a Mesos TaskState name ("TASK_RUNNING") to the status Aurora
// records for it. Names are matched exactly, as Mesos spells them.
func FromMesos(mesosState string) (Status, error) {
	if s, ok := mesosStates[mesosState]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("unknown Mesos task state %q", mesosState)
}
