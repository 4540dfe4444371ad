package health

import (
	"fmt"

	"github.com/aurorabox/aurorabox/thermos/schema"
)

// Verdict is the health checker's answer after an attempt.
type Verdict int

const (
	// Healthy: the task has not failed its checks. Aurora 0.11's checker
	// starts out healthy; it does not decide TASK_RUNNING, the executor
	// sends that once the task's processes have been started.
	Healthy Verdict = iota
	// Failed: the task must end with TASK_FAILED and the message. Terminal.
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Healthy:
		return "healthy"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// FailurePrefix starts every failure message (Aurora's HealthChecker.status:
// "Failed health check! <reason>"); the failing probe's reason follows.
const FailurePrefix = "Failed health check! "

// Checker is Aurora 0.11's ThreadedHealthChecker counting logic without
// threads, clocks or probes: the caller performs the attempts and records
// their outcomes in order. It is not safe for concurrent use.
//
// The rules, as in 0.11's executor/common/health_checker.py:
//
//   - The checker is healthy from the start. The first attempt is made
//     initial_interval_secs after the checker starts (Monitor waits), the
//     next ones interval_secs apart.
//   - A failed attempt increments the consecutive failures; when they
//     exceed max_consecutive_failures (strictly greater:
//     max_consecutive_failures=0 fails on the first failure) the verdict is
//     Failed with "Failed health check! <that probe's reason>".
//   - A success resets the consecutive failures.
//   - With initial_interval_secs 0, 0.11 makes the first check when the
//     checker is built and takes its outcome as the verdict: a failure of
//     that first attempt fails the task whatever max_consecutive_failures
//     says.
//   - A snoozed attempt (the snooze file exists) is a success: 0.11's
//     checker answers (True, None) for it without probing.
//
// 0.11 has no min_consecutive_successes, no grace counted in attempts and
// no deadline for becoming healthy (later Aurora releases added them, when
// health checks came to gate TASK_RUNNING); a min_consecutive_successes in
// the job's config is ignored.
type Checker struct {
	maxFailures  int
	firstDecides bool // initial_interval_secs is 0

	attempts int
	failures int // consecutive
	failed   bool
	reason   string
}

// NewChecker returns a checker for cfg (from HealthCheckConfig.Resolved).
func NewChecker(cfg schema.HealthCheck) *Checker {
	return &Checker{maxFailures: cfg.MaxConsecutiveFailures, firstDecides: cfg.InitialInterval <= 0}
}

// Record records one probed attempt's outcome; reason is the probe's
// failure reason (ignored for a success). It returns the verdict after the
// attempt and, for Failed, the task's failure message. Once Failed, Record
// changes nothing.
func (c *Checker) Record(ok bool, reason string) (Verdict, string) {
	if c.failed {
		return c.Verdict(), c.Message()
	}
	c.attempts++
	if ok {
		c.failures = 0
		return c.Verdict(), c.Message()
	}
	c.failures++
	if c.failures > c.maxFailures || (c.attempts == 1 && c.firstDecides) {
		c.failed, c.reason = true, reason
	}
	return c.Verdict(), c.Message()
}

// RecordSnoozed records an attempt skipped because of the snooze file: a
// success, as in 0.11.
func (c *Checker) RecordSnoozed() (Verdict, string) { return c.Record(true, "") }

// Verdict is the current verdict.
func (c *Checker) Verdict() Verdict {
	if c.failed {
		return Failed
	}
	return Healthy
}

// Message is "Failed health check! <reason>" once Failed, else "".
func (c *Checker) Message() string {
	if c.failed {
		return FailurePrefix + c.reason
	}
	return ""
}

// Reason is the bare failure reason ("" unless Failed).
func (c *Checker) Reason() string { return c.reason }

// Attempts recorded so far (snoozed ones included).
func (c *Checker) Attempts() int { return c.attempts }

// ConsecutiveFailures counted so far; 0 after a success.
func (c *Checker) ConsecutiveFailures() int { return c.failures }
