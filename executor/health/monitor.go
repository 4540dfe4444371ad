package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"
)

// SnoozeFile is the name, in the sandbox, of the file that snoozes health
// checks while it exists.
const SnoozeFile = ".healthchecksnooze"

// HealthPort is the port name an HTTP health check uses.
const HealthPort = "health"

// Probe performs one health check attempt.
type Probe func(ctx context.Context) (ok bool, reason string)

// Clock is the Monitor's time source.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Applies reports whether a task gets a real health checker, as Aurora's
// HealthCheckerProvider decides: a shell check always does; an HTTP check
// only when ports (the task's resolved port map: assigned ports plus the
// announce portmap's aliases, Aurora's resolve_ports) has a "health" port.
// When it does not apply the task has no health checker (NewMonitor with a
// nil Probe makes one that never fails).
func Applies(cfg schema.HealthCheck, ports map[string]int) bool {
	if cfg.Shell != "" {
		return true
	}
	_, ok := ports[HealthPort]
	return ok
}

// ProbeFor returns the probe cfg describes, or nil when no health check
// applies (see Applies). cfg.Shell must already be interpolated
// ({{thermos.ports[..]}}, {{thermos.task_id}}, {{mesos.instance}}); shell
// says how to run it, its Timeout being replaced by cfg.Timeout.
func ProbeFor(cfg schema.HealthCheck, ports map[string]int, shell ShellOptions) Probe {
	if !Applies(cfg, ports) {
		return nil
	}
	if cfg.Shell != "" {
		shell.Timeout = cfg.Timeout
		return func(ctx context.Context) (bool, string) { return ShellProbe(ctx, cfg.Shell, shell) }
	}
	port := ports[HealthPort]
	return func(ctx context.Context) (bool, string) {
		return HTTPProbe(ctx, port, cfg.Endpoint, cfg.ExpectedResponse, cfg.ExpectedResponseCode, cfg.Timeout)
	}
}

// Stats are Aurora's health_checker metrics.
type Stats struct {
	ConsecutiveFailures int     // consecutive counted failures; 0 after a success
	Snoozed             bool    // the last attempt was skipped for the snooze file
	Checks              int64   // probes performed (snoozed attempts are not)
	TotalLatencySecs    float64 // time spent in probes; average = TotalLatencySecs/Checks
}

// Map is the stats under Aurora's metric names (snoozed as 0 or 1).
func (s Stats) Map() map[string]float64 {
	snoozed := 0.0
	if s.Snoozed {
		snoozed = 1
	}
	return map[string]float64{
		"consecutive_failures": float64(s.ConsecutiveFailures),
		"snoozed":              snoozed,
		"checks":               float64(s.Checks),
		"total_latency_secs":   s.TotalLatencySecs,
	}
}

// Monitor runs the attempts of one task's health check.
type Monitor struct {
	checker  *Checker
	probe    Probe
	snooze   string
	initial  time.Duration
	interval time.Duration
	clock    Clock

	mu    sync.Mutex
	stats Stats
}

// NewMonitor returns a monitor running probe every cfg.Interval after
// cfg.InitialInterval, judged by a Checker for cfg. The snooze file is
// looked for in sandbox ("" = never snoozed). A nil probe makes a no-op
// monitor that never fails. A nil clock is real time.
func NewMonitor(cfg schema.HealthCheck, probe Probe, sandbox string, clock Clock) *Monitor {
	if clock == nil {
		clock = realClock{}
	}
	m := &Monitor{checker: NewChecker(cfg), probe: probe, initial: max(cfg.InitialInterval, 0), interval: interval(cfg), clock: clock}
	if sandbox != "" {
		m.snooze = filepath.Join(sandbox, SnoozeFile)
	}
	return m
}

// interval is the time between attempts; non-positive means one second.
func interval(cfg schema.HealthCheck) time.Duration {
	if cfg.Interval <= 0 {
		return time.Second
	}
	return cfg.Interval
}

// Run waits the initial interval, then makes attempts interval apart until
// the verdict is Failed or ctx is done, and returns the verdict and its
// message ("Failed health check! <reason>" when Failed, else ""). The
// executor reports TASK_RUNNING before it starts the monitor, as 0.11's
// does; a Failed verdict ends the task with TASK_FAILED. Run must be
// called once.
func (m *Monitor) Run(ctx context.Context) (Verdict, string) {
	c := m.checker
	if m.probe == nil {
		<-ctx.Done()
		return c.Verdict(), c.Message()
	}
	if m.initial > 0 {
		select {
		case <-ctx.Done():
			return c.Verdict(), c.Message()
		case <-m.clock.After(m.initial):
		}
	}
	for ctx.Err() == nil {
		var v Verdict
		if m.snoozed() {
			m.update(func(s *Stats) { s.Snoozed = true })
			v, _ = c.RecordSnoozed()
		} else {
			m.update(func(s *Stats) { s.Snoozed = false })
			start := m.clock.Now()
			ok, reason := m.attempt(ctx)
			took := m.clock.Now().Sub(start)
			m.update(func(s *Stats) { s.Checks++; s.TotalLatencySecs += took.Seconds() })
			if ctx.Err() != nil {
				break // the attempt was cut short by the stop: not an outcome
			}
			v, _ = c.Record(ok, reason)
		}
		m.update(func(s *Stats) { s.ConsecutiveFailures = c.ConsecutiveFailures() })
		if v == Failed {
			break
		}
		select {
		case <-ctx.Done():
		case <-m.clock.After(m.interval):
		}
	}
	return c.Verdict(), c.Message()
}

// attempt runs the probe; a panic is a failure, as an exception in Aurora's
// checker is.
func (m *Monitor) attempt(ctx context.Context) (ok bool, reason string) {
	defer func() {
		if r := recover(); r != nil {
			ok, reason = false, fmt.Sprintf("Internal health check error: %v", r)
		}
	}()
	return m.probe(ctx)
}

// snoozed reports whether the snooze file exists (a regular file, as
// Python's os.path.isfile).
func (m *Monitor) snoozed() bool {
	if m.snooze == "" {
		return false
	}
	fi, err := os.Stat(m.snooze)
	return err == nil && fi.Mode().IsRegular()
}

func (m *Monitor) update(f func(*Stats)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.stats)
}

// Stats returns the current metrics; safe to call while Run runs.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
