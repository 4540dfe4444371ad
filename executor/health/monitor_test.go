package health

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"
)

// fakeClock hands every After to the test, which decides when it fires.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d time.Duration
	c chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), waits: make(chan fakeWait)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	f.waits <- fakeWait{d, c}
	return c
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

type report struct {
	v   Verdict
	msg string
}

// harness runs a Monitor whose probe returns scripted outcomes, each
// taking latency of fake time.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	m      *Monitor
	mu     sync.Mutex
	script []bool
	calls  int
	cancel context.CancelFunc
	done   chan report
}

func startHarness(t *testing.T, cfg schema.HealthCheck, sandbox string, latency time.Duration, script ...bool) *harness {
	h := &harness{t: t, clock: newFakeClock(), script: script, done: make(chan report, 1)}
	probe := func(ctx context.Context) (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.calls >= len(h.script) {
			t.Errorf("probe called %d times, script has %d", h.calls+1, len(h.script))
			return false, "script exhausted"
		}
		ok := h.script[h.calls]
		h.calls++
		h.clock.advance(latency)
		return ok, fmt.Sprintf("probe %d failed", h.calls)
	}
	h.m = NewMonitor(cfg, probe, sandbox, h.clock)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.cancel)
	go func() {
		v, msg := h.m.Run(ctx)
		h.done <- report{v, msg}
	}()
	return h
}

// wait waits for the monitor to sleep and checks for how long; the monitor
// stays blocked until fire.
func (h *harness) wait(d time.Duration) fakeWait {
	h.t.Helper()
	select {
	case w := <-h.clock.waits:
		if w.d != d {
			h.t.Errorf("sleeps %v, want %v", w.d, d)
		}
		return w
	case r := <-h.done:
		h.t.Fatalf("monitor stopped early: %v %q", r.v, r.msg)
	case <-time.After(10 * time.Second):
		h.t.Fatal("monitor did not sleep")
	}
	return fakeWait{}
}

func (h *harness) fire(w fakeWait) {
	h.clock.advance(w.d)
	w.c <- h.clock.Now()
}

// step lets one sleep end: waits for it and fires it.
func (h *harness) step(d time.Duration) { h.fire(h.wait(d)) }

func (h *harness) finished() report {
	h.t.Helper()
	select {
	case r := <-h.done:
		return r
	case w := <-h.clock.waits:
		h.t.Fatalf("monitor sleeps %v instead of stopping", w.d)
	case <-time.After(10 * time.Second):
		h.t.Fatal("monitor did not stop")
	}
	return report{}
}

func (h *harness) expectCalls(calls int) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls != calls {
		h.t.Errorf("probe calls %d, want %d", h.calls, calls)
	}
}

// TestMonitorWaitsInitialInterval: as in Aurora 0.11 the first check is
// made initial_interval_secs after the monitor starts, not at once; then
// every interval_secs; with max_consecutive_failures 0 the first failure
// ends it.
func TestMonitorWaitsInitialInterval(t *testing.T) {
	cfg := hc(15*time.Second, 10*time.Second, 0)
	h := startHarness(t, cfg, "", 250*time.Millisecond, true, true, false)
	w := h.wait(15 * time.Second)
	h.expectCalls(0)
	h.fire(w)
	w = h.wait(10 * time.Second)
	h.expectCalls(1)
	h.fire(w)
	h.step(10 * time.Second)
	r := h.finished()
	if r != (report{Failed, "Failed health check! probe 3 failed"}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(3)
	want := Stats{ConsecutiveFailures: 1, Snoozed: false, Checks: 3, TotalLatencySecs: 0.75}
	if s := h.m.Stats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if m := h.m.Stats().Map(); m["checks"] != 3 || m["total_latency_secs"] != 0.75 || m["snoozed"] != 0 || m["consecutive_failures"] != 1 {
		t.Errorf("metrics %v", m)
	}
}

// TestMonitorCancelDuringInitialInterval: stopped before the first check,
// the monitor never probes and has not failed.
func TestMonitorCancelDuringInitialInterval(t *testing.T) {
	h := startHarness(t, hc(15*time.Second, 10*time.Second, 0), "", 0, false)
	h.wait(15 * time.Second)
	h.cancel()
	if r := h.finished(); r != (report{Healthy, ""}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(0)
}

func TestMonitorMaxConsecutiveFailures(t *testing.T) {
	cfg := hc(5*time.Second, 5*time.Second, 1)
	h := startHarness(t, cfg, "", 0, true, false, true, false, false)
	h.step(5 * time.Second) // the initial interval
	for range 4 {
		h.step(5 * time.Second)
	}
	if s := h.m.Stats(); s.ConsecutiveFailures != 1 || s.Checks != 4 {
		t.Errorf("stats %+v", s)
	}
	msg := "Failed health check! probe 5 failed"
	if r := h.finished(); r != (report{Failed, msg}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(5)
	if s := h.m.Stats(); s.ConsecutiveFailures != 2 || s.Checks != 5 {
		t.Errorf("stats %+v", s)
	}
}

// TestMonitorInitialIntervalZero: checks start at once, and the first one
// decides (0.11 makes it when the checker is built).
func TestMonitorInitialIntervalZero(t *testing.T) {
	h := startHarness(t, hc(0, 10*time.Second, 3), "", 0, false)
	if r := h.finished(); r != (report{Failed, "Failed health check! probe 1 failed"}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(1)
}

// The snooze file is changed only while the monitor sleeps (between wait
// and fire), so that the attempts see a definite state.
func TestMonitorSnooze(t *testing.T) {
	sandbox := t.TempDir()
	snooze := filepath.Join(sandbox, SnoozeFile)
	cfg := hc(0, 10*time.Second, 0)
	h := startHarness(t, cfg, sandbox, 0, true, false)
	w := h.wait(10 * time.Second)
	h.expectCalls(1)
	if err := os.WriteFile(snooze, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.fire(w)
	for i := range 3 {
		w := h.wait(10 * time.Second)
		if s := h.m.Stats(); !s.Snoozed || s.Checks != 1 || s.Map()["snoozed"] != 1 {
			t.Errorf("stats while snoozed %+v", s)
		}
		if i == 2 {
			// A directory of that name does not snooze (os.path.isfile).
			if err := os.Remove(snooze); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(snooze, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.fire(w)
	}
	msg := "Failed health check! probe 2 failed"
	if r := h.finished(); r != (report{Failed, msg}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(2)
	if s := h.m.Stats(); s.Snoozed || s.Checks != 2 || s.ConsecutiveFailures != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestMonitorSnoozeResetsFailures: a snoozed attempt is a success in 0.11,
// so failures on either side of it are not consecutive.
func TestMonitorSnoozeResetsFailures(t *testing.T) {
	sandbox := t.TempDir()
	snooze := filepath.Join(sandbox, SnoozeFile)
	h := startHarness(t, hc(10*time.Second, 10*time.Second, 1), sandbox, 0, false, false)
	h.step(10 * time.Second)
	w := h.wait(10 * time.Second) // after failure 1
	if err := os.WriteFile(snooze, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.fire(w)
	w = h.wait(10 * time.Second) // after the snoozed attempt
	if s := h.m.Stats(); s.ConsecutiveFailures != 0 {
		t.Errorf("consecutive failures %d after a snoozed attempt", s.ConsecutiveFailures)
	}
	if err := os.Remove(snooze); err != nil {
		t.Fatal(err)
	}
	h.fire(w)
	w = h.wait(10 * time.Second) // after failure 2, not consecutive
	h.expectCalls(2)
	h.cancel()
	h.fire(w)
	if r := h.finished(); r != (report{Healthy, ""}) {
		t.Errorf("returned %v", r)
	}
}

func TestMonitorSnoozedFromTheStart(t *testing.T) {
	// The probe is never run and, snoozed attempts being successes, the
	// task never fails.
	sandbox := t.TempDir()
	if err := os.WriteFile(filepath.Join(sandbox, SnoozeFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, hc(15*time.Second, 10*time.Second, 0), sandbox, 0)
	h.step(15 * time.Second)
	for range 5 {
		h.step(10 * time.Second)
	}
	w := h.wait(10 * time.Second)
	h.cancel()
	h.fire(w)
	if r := h.finished(); r != (report{Healthy, ""}) {
		t.Errorf("returned %v", r)
	}
	h.expectCalls(0)
	if s := h.m.Stats(); !s.Snoozed || s.Checks != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMonitorCancelDuringProbe(t *testing.T) {
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe := func(ctx context.Context) (bool, string) {
		cancel()
		<-ctx.Done()
		return false, "cancelled"
	}
	m := NewMonitor(hc(0, time.Second, 0), probe, "", clock)
	done := make(chan report)
	go func() {
		v, msg := m.Run(ctx)
		done <- report{v, msg}
	}()
	select {
	case r := <-done:
		// The cut-short attempt is not an outcome: no failure.
		if r != (report{Healthy, ""}) {
			t.Errorf("returned %v", r)
		}
	case w := <-clock.waits:
		t.Fatalf("sleeps %v after cancel", w.d)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestMonitorProbePanics(t *testing.T) {
	clock := newFakeClock()
	probe := func(context.Context) (bool, string) { panic("boom") }
	m := NewMonitor(hc(0, time.Second, 0), probe, "", clock)
	done := make(chan report)
	go func() {
		v, msg := m.Run(context.Background())
		done <- report{v, msg}
	}()
	select {
	case r := <-done:
		if r != (report{Failed, "Failed health check! Internal health check error: boom"}) {
			t.Errorf("returned %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestNoopMonitor(t *testing.T) {
	clock := newFakeClock()
	m := NewMonitor(hc(15*time.Second, 10*time.Second, 0), nil, t.TempDir(), clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan report)
	go func() {
		v, msg := m.Run(ctx)
		done <- report{v, msg}
	}()
	select {
	case r := <-done:
		t.Fatalf("returned %v before the stop", r)
	case w := <-clock.waits:
		t.Fatalf("no-op monitor sleeps %v", w.d)
	default:
	}
	cancel()
	if r := <-done; r != (report{Healthy, ""}) {
		t.Errorf("returned %v", r)
	}
}

func TestAppliesAndProbeFor(t *testing.T) {
	httpCfg := schema.HealthCheckConfig{}.Resolved()
	shellCfg := schema.HealthCheckConfig{HealthChecker: schema.HealthCheckerConfig{
		Shell: &schema.ShellHealthChecker{ShellCommand: "exit 4"},
	}}.Resolved()

	if Applies(httpCfg, map[string]int{"http": 8080}) || ProbeFor(httpCfg, map[string]int{"http": 8080}, ShellOptions{}) != nil {
		t.Error("HTTP check without a health port applies")
	}
	if Applies(httpCfg, nil) {
		t.Error("HTTP check with no ports applies")
	}
	if !Applies(shellCfg, nil) {
		t.Error("shell check without ports does not apply")
	}

	port := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			fmt.Fprint(w, "OK\n")
		}
	})
	ports := map[string]int{"http": 1, "health": port}
	if !Applies(httpCfg, ports) {
		t.Fatal("HTTP check with a health port does not apply")
	}
	if ok, reason := ProbeFor(httpCfg, ports, ShellOptions{})(context.Background()); !ok {
		t.Errorf("HTTP probe: %s", reason)
	}
	ok, reason := ProbeFor(shellCfg, nil, ShellOptions{})(context.Background())
	if ok || reason != "Command 'exit 4' returned non-zero exit status 4 with output ''" {
		t.Errorf("shell probe: %v %q", ok, reason)
	}
}
