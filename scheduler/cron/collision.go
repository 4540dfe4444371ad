package cron

import (
	"errors"
	"fmt"
	"time"
)

// Policy is a job's cron_collision_policy (JobConfiguration's
// cronCollisionPolicy): what a firing does while tasks of the job's previous
// run are still active.
type Policy string

// The collision policies.
const (
	// KillExisting (the default) kills the active tasks of the previous
	// run, waits until they are gone, then launches the new run.
	KillExisting Policy = "KILL_EXISTING"
	// CancelNew skips the new run.
	CancelNew Policy = "CANCEL_NEW"
	// RunOverlap is deprecated: Aurora refuses it on scheduleCronJob and
	// replaceCronTemplate, and a stored job that still has it is treated
	// as CancelNew.
	RunOverlap Policy = "RUN_OVERLAP"
)

// Effective is the policy the scheduler applies: KillExisting when unset,
// CancelNew for RunOverlap, p otherwise.
func (p Policy) Effective() Policy {
	switch p {
	case "":
		return KillExisting
	case RunOverlap:
		return CancelNew
	}
	return p
}

// CheckPolicy validates the collision policy of a job given to
// scheduleCronJob or replaceCronTemplate, with Aurora's message for
// RUN_OVERLAP. Unset is fine (KILL_EXISTING).
func CheckPolicy(p Policy) error {
	switch p {
	case "", KillExisting, CancelNew:
		return nil
	case RunOverlap:
		//lint:ignore ST1005 Aurora's message, verbatim
		return errors.New("The RUN_OVERLAP collision policy has been removed (AURORA-38).")
	}
	return fmt.Errorf("unknown cron collision policy %q; want KILL_EXISTING or CANCEL_NEW", string(p))
}

// Action is what a cron firing does.
type Action int

// The actions.
const (
	// Launch: insert the job's pending tasks now.
	Launch Action = iota + 1
	// KillThenLaunch: kill the job's active tasks (audit message "Killed by
	// cronScheduler"), poll until none is active, waiting KillWait(n)
	// before the n-th poll, then insert the pending tasks.
	KillThenLaunch
	// Skip: do nothing this time.
	Skip
)

func (a Action) String() string {
	switch a {
	case Launch:
		return "LAUNCH"
	case KillThenLaunch:
		return "KILL_THEN_LAUNCH"
	case Skip:
		return "SKIP"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decide is what a firing of a job with policy p does when the job has
// active tasks active (tasks in any active state, PENDING included), as in
// Aurora's AuroraCronJob; it applies to scheduled firings and to
// startCronJob alike. With no active task every policy launches; otherwise
// KILL_EXISTING (or unset) kills then launches, CANCEL_NEW and the
// deprecated RUN_OVERLAP skip, and an unknown policy skips (Aurora logs it
// and does nothing).
func Decide(p Policy, active int) Action {
	if active <= 0 {
		return Launch
	}
	if p.Effective() == KillExisting {
		return KillThenLaunch
	}
	return Skip
}

// KillWait is how long KillThenLaunch waits before the n-th check (n from
// 1) that the killed tasks are gone: 5 s, doubling each time, at most 1 min
// (Aurora's delayed-start backoff).
func KillWait(n int) time.Duration {
	const first, most = 5 * time.Second, time.Minute
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}
