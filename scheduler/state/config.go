package state

import (
	"time"
)

// Config holds the scheduler settings that decide the timing of task state
// changes (reference section 5.3). The field comments name Aurora's flags.
type Config struct {
	// TransientTaskStateTimeout (-transient_task_state_timeout): a task that
	// stays this long in ASSIGNED, PREEMPTING, RESTARTING, KILLING or
	// DRAINING is moved to LOST ("Task timed out"). 0 disables the timeout.
	TransientTaskStateTimeout time.Duration
	// InitialTaskKillRetryInterval (-initial_task_kill_retry_interval): the
	// first wait before a kill of a KILLING task is sent again; the wait
	// doubles up to TransientTaskStateTimeout (see KillRetryDelay).
	InitialTaskKillRetryInterval time.Duration
	// FlappingTaskThreshold (-flapping_task_threshold): a task that ran
	// shorter than this flapped (see Flapped).
	FlappingTaskThreshold time.Duration
	// InitialFlappingTaskDelay and MaxFlappingTaskDelay
	// (-initial_flapping_task_delay, -max_flapping_task_delay): the truncated
	// binary backoff over a chain of flapping tasks that decides how long a
	// replacement stays THROTTLED. An initial delay of 0 disables throttling.
	InitialFlappingTaskDelay time.Duration
	MaxFlappingTaskDelay     time.Duration
	// InitialNeverRanTaskDelay (aurorabox's own): the THROTTLED time of the
	// replacement of a task that flapped without ever reaching RUNNING (it
	// was LOST, FAILED, ... on its way to its executor), doubling with each
	// such task in a row up to MaxFlappingTaskDelay. It applies even when
	// InitialFlappingTaskDelay is 0, so that a task that cannot start (an
	// executor that cannot receive it, a missing user) is not placed again
	// and again; the larger of the two penalties wins (see Penalty). 0
	// disables it.
	InitialNeverRanTaskDelay time.Duration
	// FirstScheduleDelay (-first_schedule_delay): the wait before the first
	// attempt to place a PENDING task.
	FirstScheduleDelay time.Duration
	// InitialSchedulePenalty and MaxSchedulePenalty (-initial_schedule_penalty,
	// -max_schedule_penalty): the doubling wait after failed attempts to place
	// a task (see SchedulePenalty).
	InitialSchedulePenalty time.Duration
	MaxSchedulePenalty     time.Duration
	// MaxRescheduleTaskDelayOnStartup (-max_reschedule_task_delay_on_startup):
	// the upper bound of the random delay before PENDING tasks are scheduled
	// after a scheduler start (see StartupScheduleDelay).
	MaxRescheduleTaskDelayOnStartup time.Duration
}

// AuroraConfig returns Aurora's production defaults.
func AuroraConfig() Config {
	return Config{
		TransientTaskStateTimeout:       5 * time.Minute,
		InitialTaskKillRetryInterval:    15 * time.Second,
		FlappingTaskThreshold:           5 * time.Minute,
		InitialFlappingTaskDelay:        30 * time.Second,
		MaxFlappingTaskDelay:            5 * time.Minute,
		InitialNeverRanTaskDelay:        30 * time.Second,
		FirstScheduleDelay:              time.Millisecond,
		InitialSchedulePenalty:          time.Second,
		MaxSchedulePenalty:              time.Minute,
		MaxRescheduleTaskDelayOnStartup: 30 * time.Second,
	}
}

// DevConfig returns the aurorabox dev profile: Aurora's timeouts, but no
// multi-second waits before a task is first scheduled. Flapping tasks (those
// that ran shorter than Aurora's 5 min threshold) are throttled as in Aurora
// but on a dev scale: 1 s, doubling up to 30 s (InitialFlappingTaskDelay,
// MaxFlappingTaskDelay), and so are tasks that never ran
// (InitialNeverRanTaskDelay, 1 s); the first scheduling attempt is
// immediate, failed attempts back off from 100 ms to 1 s, and there is no
// random delay after a scheduler start.
func DevConfig() Config {
	c := AuroraConfig()
	c.InitialFlappingTaskDelay = time.Second
	c.MaxFlappingTaskDelay = 30 * time.Second
	c.InitialNeverRanTaskDelay = time.Second
	c.FirstScheduleDelay = 0
	c.InitialSchedulePenalty = 100 * time.Millisecond
	c.MaxSchedulePenalty = time.Second
	c.MaxRescheduleTaskDelayOnStartup = 0
	return c
}

// backoff is a truncated binary backoff: 0 for n <= 0 or initial <= 0, else
// initial * 2^(n-1), at most max (when max > 0).
func backoff(initial, max time.Duration, n int) time.Duration {
	if n <= 0 || initial <= 0 {
		return 0
	}
	d := initial
	for i := 1; i < n; i++ {
		if max > 0 && d >= max || d > time.Duration(1<<62) {
			break
		}
		d *= 2
	}
	if max > 0 && d > max {
		d = max
	}
	return d
}

// FlappingPenalty is how long the replacement of the last of flaps
// consecutive flapping tasks stays THROTTLED: 0 for no flaps, then
// InitialFlappingTaskDelay doubling with each further flap, capped at
// MaxFlappingTaskDelay (30 s, 1 min, 2 min, 4 min, 5 min, 5 min, ... with
// Aurora's defaults).
func (c Config) FlappingPenalty(flaps int) time.Duration {
	return backoff(c.InitialFlappingTaskDelay, c.MaxFlappingTaskDelay, flaps)
}

// Penalty is how long a replacement task t stays THROTTLED: the larger of
// FlappingPenalty(t.Flaps) and InitialNeverRanTaskDelay doubling over
// t.NeverRan, capped at MaxFlappingTaskDelay.
func (c Config) Penalty(t Task) time.Duration {
	return max(c.FlappingPenalty(t.Flaps), backoff(c.InitialNeverRanTaskDelay, c.MaxFlappingTaskDelay, t.NeverRan))
}

// SchedulePenalty is the wait before the next attempt to place a PENDING
// task after failedAttempts attempts that found no offer: FirstScheduleDelay
// before the first attempt, then InitialSchedulePenalty doubling up to
// MaxSchedulePenalty.
func (c Config) SchedulePenalty(failedAttempts int) time.Duration {
	if failedAttempts <= 0 {
		return c.FirstScheduleDelay
	}
	return backoff(c.InitialSchedulePenalty, c.MaxSchedulePenalty, failedAttempts)
}

// KillRetryDelay is the wait before the kill of a task that is still KILLING
// is sent again, after attempt kills (attempt >= 1): InitialTaskKillRetryInterval
// doubling up to TransientTaskStateTimeout, as Aurora's KillRetry.
func (c Config) KillRetryDelay(attempt int) time.Duration {
	return backoff(c.InitialTaskKillRetryInterval, c.TransientTaskStateTimeout, attempt)
}

// StartupScheduleDelay is the delay before a PENDING task is scheduled after
// a scheduler start: a random part, frac (in [0, 1), from the caller's random
// source) of MaxRescheduleTaskDelayOnStartup, plus the task's Penalty.
func (c Config) StartupScheduleDelay(t Task, frac float64) time.Duration {
	if frac < 0 || frac >= 1 {
		frac = 0
	}
	return time.Duration(frac*float64(c.MaxRescheduleTaskDelayOnStartup)) + c.Penalty(t)
}

// TransientDeadline is when a task that entered status s at since times out
// (moves to LOST), and false if s is not transient or the timeout is disabled.
func (c Config) TransientDeadline(s Status, since time.Time) (time.Time, bool) {
	if !s.Transient() || c.TransientTaskStateTimeout <= 0 {
		return time.Time{}, false
	}
	return since.Add(c.TransientTaskStateTimeout), true
}

// Flapped reports whether a terminated task, given its event history (oldest
// first, ending with the terminal event), ran for less than
// FlappingTaskThreshold. As in Aurora's RescheduleCalculator, a task that was
// ever RESTARTING, KILLING or DRAINING was interrupted from outside and did
// not flap, and a task with no events did not flap; unlike Aurora, PREEMPTING
// counts as an interruption too (the preemptor chose the task; its
// replacement should not be throttled for that). The run is measured from
// the task's first RUNNING event to the terminal event; for a task that never
// reached RUNNING, from its latest active event (Aurora measures from the
// latest active event in every case, which makes a task that came back from
// PARTITIONED look short-lived however long it ran).
func (c Config) Flapped(events []TaskEvent) bool {
	if len(events) == 0 {
		return false
	}
	for _, e := range events {
		switch e.Status {
		case Restarting, Killing, Draining, Preempting:
			return false
		}
	}
	last := events[len(events)-1]
	if !last.Status.Terminal() {
		return false
	}
	start, found := time.Time{}, false
	for _, e := range events {
		if e.Status == Running {
			start, found = e.Time, true
			break
		}
	}
	if !found {
		for i := len(events) - 1; i >= 0; i-- {
			if events[i].Status.Active() {
				start, found = events[i].Time, true
				break
			}
		}
	}
	if !found {
		return false
	}
	return last.Time.Sub(start) < c.FlappingTaskThreshold
}

// NeverRan reports whether a terminated task, given its event history,
// flapped (see Flapped) without ever reaching RUNNING: it ended on its way
// to its executor, or before its process started.
func (c Config) NeverRan(events []TaskEvent) bool {
	if !c.Flapped(events) {
		return false
	}
	for _, e := range events {
		if e.Status == Running {
			return false
		}
	}
	return true
}
