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

	"github.com/aurorabox/aurorabox/executor/assigned"
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
	t       *testing.T
	clock   *fakeClock
	m       *Monitor
	mu      sync.Mutex
	script  []bool
	calls   int
	reports []report
	cancel  context.CancelFunc
	done    chan report
}

func startHarness(t *testing.T, cfg assigned.HealthCheck, sandbox string, latency time.Duration, script ...bool) *harness {
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
		v, msg := h.m.Run(ctx, func(v Verdict, msg string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.reports = append(h.reports, report{v, msg})
		})
		h.done <- report{v, msg}
	}()
	return h
}

// wait waits for the monitor to sleep (after an attempt) and checks the
// interval; the monitor stays blocked until fire.
func (h *harness) wait(interval time.Duration) fakeWait {
	h.t.Helper()
	select {
	case w := <-h.clock.waits:
		if w.d != interval {
			h.t.Errorf("sleeps %v, want %v", w.d, interval)
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

// step lets one attempt happen: waits for the sleep after it and fires it.
func (h *harness) step(interval time.Duration) { h.fire(h.wait(interval)) }

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

func (h *harness) state() (calls int, reports []report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, append([]report(nil), h.reports...)
}

func (h *harness) expect(calls int, reports ...report) {
	h.t.Helper()
	c, r := h.state()
	if c != calls || fmt.Sprint(r) != fmt.Sprint(reports) {
		h.t.Errorf("probe calls %d, reports %v; want %d, %v", c, r, calls, reports)
	}
}

func TestMonitorHealthyOnce(t *testing.T) {
	cfg := hc(15*time.Second, 10*time.Second, 0, 1) // grace 2
	h := startHarness(t, cfg, "", 250*time.Millisecond, false, false, true, true, true)
	w := h.wait(10 * time.Second) // the first attempt is made at once
	h.expect(1)
	h.fire(w)
	// Counted while the monitor sleeps: once fired, it makes the next
	// attempt at once.
	w = h.wait(10 * time.Second)
	h.expect(2)
	h.fire(w)
	w = h.wait(10 * time.Second)
	h.expect(3, report{Healthy, HealthyMessage})
	h.fire(w)
	h.step(10 * time.Second)
	w = h.wait(10 * time.Second)
	h.expect(5, report{Healthy, HealthyMessage})
	want := Stats{ConsecutiveFailures: 0, Snoozed: false, Checks: 5, TotalLatencySecs: 1.25}
	if s := h.m.Stats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if m := h.m.Stats().Map(); m["checks"] != 5 || m["total_latency_secs"] != 1.25 || m["snoozed"] != 0 || m["consecutive_failures"] != 0 {
		t.Errorf("metrics %v", m)
	}
	h.cancel()
	w.c <- h.clock.Now() // either the cancel or this ends the wait
	if r := h.finished(); r != (report{Healthy, HealthyMessage}) {
		t.Errorf("returned %v", r)
	}
}

func TestMonitorFailedAfterHealthy(t *testing.T) {
	cfg := hc(0, 5*time.Second, 1, 1)
	h := startHarness(t, cfg, "", 0, true, false, true, false, false)
	for range 3 {
		h.step(5 * time.Second)
	}
	w := h.wait(5 * time.Second) // stats while it sleeps, before attempt 5
	if s := h.m.Stats(); s.ConsecutiveFailures != 1 || s.Checks != 4 {
		t.Errorf("stats %+v", s)
	}
	h.fire(w)
	r := h.finished()
	msg := "Failed health check! probe 5 failed"
	if r != (report{Failed, msg}) {
		t.Errorf("returned %v", r)
	}
	h.expect(5, report{Healthy, HealthyMessage}, report{Failed, msg})
	if s := h.m.Stats(); s.ConsecutiveFailures != 2 || s.Checks != 5 {
		t.Errorf("stats %+v", s)
	}
}

func TestMonitorDeadlineSkipsProbe(t *testing.T) {
	cfg := hc(0, 10*time.Second, 1, 2) // max_attempts 3, deadline before attempt 5
	h := startHarness(t, cfg, "", 0, true, false, true, false)
	for range 4 {
		h.step(10 * time.Second)
	}
	msg := DeadlineReason
	if r := h.finished(); r != (report{Failed, msg}) {
		t.Errorf("returned %v", r)
	}
	h.expect(4, report{Failed, msg})
}

// The snooze file is changed only while the monitor sleeps (between wait
// and fire), so that the attempts see a definite state.
func TestMonitorSnooze(t *testing.T) {
	sandbox := t.TempDir()
	snooze := filepath.Join(sandbox, SnoozeFile)
	cfg := hc(0, 10*time.Second, 0, 1)
	h := startHarness(t, cfg, sandbox, 0, true, false)
	w := h.wait(10 * time.Second)
	h.expect(1, report{Healthy, HealthyMessage})
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
	h.expect(2, report{Healthy, HealthyMessage}, report{Failed, msg})
	if s := h.m.Stats(); s.Snoozed || s.Checks != 2 || s.ConsecutiveFailures != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestMonitorSnoozeMakesFailuresHarmless(t *testing.T) {
	// The probe would fail every time after the first success; with the
	// snooze file in place it is never run and the task stays healthy.
	sandbox := t.TempDir()
	cfg := hc(0, 10*time.Second, 0, 1)
	h := startHarness(t, cfg, sandbox, 0, true, false, false, false)
	w := h.wait(10 * time.Second)
	if err := os.WriteFile(filepath.Join(sandbox, SnoozeFile), []byte("debugging"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.fire(w)
	for range 10 {
		h.step(10 * time.Second)
	}
	w = h.wait(10 * time.Second)
	h.expect(1, report{Healthy, HealthyMessage})
	h.cancel() // while the monitor sleeps: it must stop without another attempt
	h.fire(w)
	if r := h.finished(); r.v != Healthy {
		t.Errorf("returned %v", r)
	}
}

func TestMonitorSnoozedFromTheStart(t *testing.T) {
	// As in Aurora, snoozed attempts are not successes: a task snoozed
	// before it became healthy runs into the deadline (max_attempts 3,
	// declared before attempt 5), and the probe is never run.
	sandbox := t.TempDir()
	if err := os.WriteFile(filepath.Join(sandbox, SnoozeFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, hc(15*time.Second, 10*time.Second, 0, 1), sandbox, 0)
	for range 4 {
		h.step(10 * time.Second)
	}
	msg := DeadlineReason
	if r := h.finished(); r != (report{Failed, msg}) {
		t.Errorf("returned %v", r)
	}
	h.expect(0, report{Failed, msg})
	if s := h.m.Stats(); !s.Snoozed || s.Checks != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMonitorCancelDuringProbe(t *testing.T) {
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reports []report
	probe := func(ctx context.Context) (bool, string) {
		cancel()
		<-ctx.Done()
		return false, "cancelled"
	}
	m := NewMonitor(hc(0, time.Second, 0, 1), probe, "", clock)
	done := make(chan report)
	go func() {
		v, msg := m.Run(ctx, func(v Verdict, msg string) { reports = append(reports, report{v, msg}) })
		done <- report{v, msg}
	}()
	select {
	case r := <-done:
		// The cut-short attempt is not an outcome: no failure.
		if r != (report{Pending, ""}) || len(reports) != 0 {
			t.Errorf("returned %v, reports %v", r, reports)
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
	m := NewMonitor(hc(0, time.Second, 0, 1), probe, "", clock)
	done := make(chan report)
	go func() {
		v, msg := m.Run(context.Background(), nil)
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
	m := NewMonitor(hc(15*time.Second, 10*time.Second, 0, 1), nil, t.TempDir(), newFakeClock())
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan report, 2)
	done := make(chan report)
	go func() {
		v, msg := m.Run(ctx, func(v Verdict, msg string) { got <- report{v, msg} })
		done <- report{v, msg}
	}()
	select {
	case r := <-got:
		if r != (report{Healthy, NoopMessage}) {
			t.Errorf("reported %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no report")
	}
	cancel()
	if r := <-done; r != (report{Healthy, NoopMessage}) {
		t.Errorf("returned %v", r)
	}
	if len(got) != 0 {
		t.Errorf("more reports: %v", <-got)
	}
}

func TestAppliesAndProbeFor(t *testing.T) {
	httpCfg := assigned.HealthCheckConfig{}.Resolved()
	shellCfg := assigned.HealthCheckConfig{HealthChecker: assigned.HealthChecker{
		Shell: &assigned.ShellHealthChecker{ShellCommand: "exit 4"},
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
