package health

import (
	"fmt"
	"math"
	"time"

	"github.com/aurorabox/aurorabox/executor/assigned"
)

// Verdict is the health checker's answer after an attempt.
type Verdict int

const (
	// Pending: not yet healthy, not failed (the task stays TASK_STARTING).
	Pending Verdict = iota
	// Healthy: min_consecutive_successes reached (the task is TASK_RUNNING).
	// A Healthy checker never goes back to Pending.
	Healthy
	// Failed: the task must end with TASK_FAILED and the message. Terminal.
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Pending:
		return "pending"
	case Healthy:
		return "healthy"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Status messages, as Aurora's HealthChecker.status and NoopHealthChecker
// word them.
const (
	// HealthyMessage accompanies TASK_RUNNING once the checks passed.
	HealthyMessage = "Task is healthy."
	// NoopMessage accompanies TASK_RUNNING when no health check applies.
	NoopMessage = "No health-check defined, task is assumed healthy."
	// FailurePrefix starts every failure message; the reason follows.
	FailurePrefix = "Failed health check! "
	// DeadlineReason is the reason when the task did not become healthy
	// within the allowed attempts. It is also the whole message, without
	// FailurePrefix: the reference (§6.2) and our issue give it bare, while
	// Aurora's final code prefixes it like any other reason.
	DeadlineReason = "Not enough successful health checks in time."
)

// Checker is Aurora's ThreadedHealthChecker counting logic without threads,
// clocks or probes: the caller performs the attempts and records their
// outcomes in order. It is not safe for concurrent use.
//
// Reading of Aurora's code (attic-aurora, the final version), which this
// type follows rule for rule:
//
//   - grace ("forgiving attempts") = ceil(initial_interval / interval).
//     Attempts are numbered from 1; a failure of attempt n <= grace is
//     ignored entirely: it resets the consecutive-success counter but does
//     not count as a consecutive failure. This holds even when the task is
//     already healthy (a success in attempt 1 then a failure in attempt 2
//     of a grace of 2 is still healthy).
//   - A failure after grace, healthy or not, increments the consecutive
//     failures; when they exceed max_consecutive_failures (strictly greater:
//     max_consecutive_failures=0 fails on the first counted failure) the
//     verdict is Failed with "Failed health check! <that probe's reason>".
//     So failures before the task became healthy count against the same
//     limit as failures after.
//   - A (non-snoozed) success increments the consecutive successes, resets
//     the consecutive failures, and makes the task Healthy once the
//     successes reach min_consecutive_successes (>=). Healthy is sticky.
//   - max_attempts = grace + max_consecutive_failures +
//     min_consecutive_successes. Before each attempt, if the task is not
//     healthy and more than max_attempts attempts were made, the verdict is
//     Failed with "Not enough successful health checks in time." (see
//     DeadlineReason) and no probe is run. Because the check is "more than", a
//     task gets max_attempts+1 attempts to become healthy, and the deadline
//     failure is declared at the start of attempt max_attempts+2, one
//     interval after the last probe (Aurora's off-by-one, kept).
//   - Fail fast: on a counted failure while not healthy, with
//     remaining = max_attempts - attempts and needed =
//     min_consecutive_successes (the successes were just reset), the task
//     fails when remaining > 1 and needed > remaining. The reason is the
//     failing probe's, not the deadline's. (With remaining <= 1 Aurora lets
//     the deadline do it.)
//   - A snoozed attempt (RecordSnoozed) counts as an attempt and is never a
//     failure, so it cannot fail a healthy task; but, as in Aurora, it is
//     not a success either: it resets the consecutive successes and leaves
//     the consecutive failures alone. A task snoozed before it became
//     healthy therefore runs into the deadline.
type Checker struct {
	grace, maxFailures, minSuccesses, maxAttempts int

	attempts  int // capped at maxAttempts+1, as in Aurora
	successes int // consecutive
	failures  int // consecutive
	running   bool
	failed    bool
	reason    string
}

// NewChecker returns a checker for cfg (from HealthCheckConfig.Resolved).
// A non-positive interval is taken as one second.
func NewChecker(cfg assigned.HealthCheck) *Checker {
	grace := int(math.Ceil(float64(max(cfg.InitialInterval, 0)) / float64(interval(cfg))))
	return &Checker{
		grace:        grace,
		maxFailures:  cfg.MaxConsecutiveFailures,
		minSuccesses: cfg.MinConsecutiveSuccesses,
		maxAttempts:  grace + cfg.MaxConsecutiveFailures + cfg.MinConsecutiveSuccesses,
	}
}

// interval is the time between attempts; non-positive means one second.
func interval(cfg assigned.HealthCheck) time.Duration {
	if cfg.Interval <= 0 {
		return time.Second
	}
	return cfg.Interval
}

// BeforeAttempt applies the attempt deadline; call it before probing and
// skip the probe when it answers Failed. Record and RecordSnoozed apply it
// too, so calling it is only needed to avoid a useless probe.
func (c *Checker) BeforeAttempt() (Verdict, string) {
	if !c.failed && !c.running && c.attempts > c.maxAttempts {
		c.fail(DeadlineReason)
	}
	return c.Verdict(), c.Message()
}

// Record records one probed attempt's outcome; reason is the probe's
// failure reason (ignored for a success). It returns the verdict after the
// attempt and, for Failed, the task's failure message (for Healthy,
// HealthyMessage; for Pending, ""). Once Failed, Record changes nothing.
func (c *Checker) Record(ok bool, reason string) (Verdict, string) {
	if !c.begin() {
		return c.Verdict(), c.Message()
	}
	if ok {
		c.successes++
		if !c.running && c.successes >= c.minSuccesses {
			c.running = true
		}
		c.failures = 0
		return c.Verdict(), c.Message()
	}
	c.successes = 0
	if c.attempts <= c.grace {
		return c.Verdict(), c.Message()
	}
	if !c.running {
		remaining := c.maxAttempts - c.attempts
		needed := c.minSuccesses - c.successes
		if remaining > 1 && needed > remaining {
			c.fail(reason)
		}
	}
	c.failures++
	if c.failures > c.maxFailures {
		c.fail(reason)
	}
	return c.Verdict(), c.Message()
}

// RecordSnoozed records an attempt skipped because of the snooze file (see
// the type's doc: neither a failure nor a success).
func (c *Checker) RecordSnoozed() (Verdict, string) {
	if c.begin() {
		c.successes = 0
	}
	return c.Verdict(), c.Message()
}

// begin applies the deadline and counts the attempt; false when the
// attempt must not be evaluated (the checker has failed).
func (c *Checker) begin() bool {
	if v, _ := c.BeforeAttempt(); v == Failed {
		return false
	}
	if c.attempts <= c.maxAttempts {
		c.attempts++
	}
	return true
}

// fail records the failure; the first reason stays (Aurora's thread would
// overwrite it on later failures, but the executor acts on the first
// failed status it sees).
func (c *Checker) fail(reason string) {
	if !c.failed {
		c.failed, c.reason = true, reason
	}
}

// Verdict is the current verdict.
func (c *Checker) Verdict() Verdict {
	switch {
	case c.failed:
		return Failed
	case c.running:
		return Healthy
	}
	return Pending
}

// Message is the status message of the current verdict: "" while Pending,
// HealthyMessage when Healthy, "Failed health check! <reason>" when Failed.
func (c *Checker) Message() string {
	switch c.Verdict() {
	case Failed:
		if c.reason == DeadlineReason {
			return DeadlineReason
		}
		return FailurePrefix + c.reason
	case Healthy:
		return HealthyMessage
	}
	return ""
}

// Reason is the bare failure reason ("" unless Failed).
func (c *Checker) Reason() string { return c.reason }

// Attempts made so far (Aurora stops counting at max_attempts+1).
func (c *Checker) Attempts() int { return c.attempts }

// ConsecutiveFailures counted (failures in grace are not counted).
func (c *Checker) ConsecutiveFailures() int { return c.failures }

// ConsecutiveSuccesses so far.
func (c *Checker) ConsecutiveSuccesses() int { return c.successes }

// Grace is the number of forgiving attempts.
func (c *Checker) Grace() int { return c.grace }

// MaxAttempts is grace + max_consecutive_failures + min_consecutive_successes.
func (c *Checker) MaxAttempts() int { return c.maxAttempts }
