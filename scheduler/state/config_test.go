package state

import (
	"testing"
	"time"
)

func TestFlappingPenalty(t *testing.T) {
	s := time.Second
	aurora := AuroraConfig()
	for flaps, want := range []time.Duration{0, 30 * s, 60 * s, 120 * s, 240 * s, 300 * s, 300 * s, 300 * s} {
		if got := aurora.FlappingPenalty(flaps); got != want {
			t.Errorf("aurora FlappingPenalty(%d) = %v, want %v", flaps, got, want)
		}
	}
	if got := aurora.FlappingPenalty(1 << 20); got != 5*time.Minute {
		t.Errorf("FlappingPenalty(huge) = %v", got)
	}
	if got := aurora.FlappingPenalty(-1); got != 0 {
		t.Errorf("FlappingPenalty(-1) = %v", got)
	}
	// The dev profile throttles too, on a dev scale (issue 15).
	dev := DevConfig()
	for flaps, want := range []time.Duration{0, s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s} {
		if got := dev.FlappingPenalty(flaps); got != want {
			t.Errorf("dev FlappingPenalty(%d) = %v, want %v", flaps, got, want)
		}
	}
	dev.InitialFlappingTaskDelay = 0
	for flaps := 0; flaps < 10; flaps++ {
		if got := dev.FlappingPenalty(flaps); got != 0 {
			t.Errorf("dev without the throttle FlappingPenalty(%d) = %v, want 0", flaps, got)
		}
	}
	odd := Config{InitialFlappingTaskDelay: 10 * s, MaxFlappingTaskDelay: 25 * s}
	for flaps, want := range []time.Duration{0, 10 * s, 20 * s, 25 * s, 25 * s} {
		if got := odd.FlappingPenalty(flaps); got != want {
			t.Errorf("10s/25s FlappingPenalty(%d) = %v, want %v", flaps, got, want)
		}
	}
}

// TestFlappingBackoffChain drives a chain of replacements through the
// machine: each runs 10 s and fails; then one runs longer than the threshold.
func TestFlappingBackoffChain(t *testing.T) {
	s := time.Second
	var n int
	m := &Machine{Config: AuroraConfig(), NewTaskID: func(Task) string { n++; return "r" + string(rune('a'+n)) }}
	now := base
	tk := Task{ID: "first", Status: Init, IsService: true, MaxTaskFailures: 1}
	must := func(r Result) Task {
		t.Helper()
		if r.Outcome != Success {
			t.Fatalf("%s: outcome %v", r.Task.ID, r.Outcome)
		}
		return r.Task
	}
	tk = must(m.Transition(tk, Pending, Event{Time: now}))
	// run lets tk run for d, fail, and returns the replacement.
	run := func(d time.Duration) (Task, time.Duration) {
		t.Helper()
		if tk.Status == Throttled {
			tms := m.Timers(tk)
			if len(tms) != 1 || tms[0].Kind != ThrottleEnd {
				t.Fatalf("throttled task has timers %+v", tms)
			}
			now = tms[0].At
			tk = must(m.Fire(tk, tms[0], now))
		}
		tk = must(m.Transition(tk, Assigned, Event{Time: now}))
		tk = must(m.Transition(tk, Running, Event{Time: now}))
		now = now.Add(d)
		r := m.Transition(tk, Failed, Event{Time: now})
		for _, a := range r.Actions {
			if a.Kind == Reschedule {
				nt := *a.Replacement
				var penalty time.Duration
				if nt.Status == Throttled {
					penalty = m.Timers(nt)[0].At.Sub(now)
				}
				return nt, penalty
			}
		}
		t.Fatalf("no replacement for %s", tk.ID)
		return Task{}, 0
	}
	for i, tc := range []struct {
		ran  time.Duration
		want time.Duration
	}{
		{10 * s, 30 * s},
		{10 * s, 60 * s},
		{10 * s, 120 * s},
		{10 * s, 240 * s},
		{10 * s, 300 * s},
		{10 * s, 300 * s},
		{4*time.Minute + 59*s, 300 * s},
		{5 * time.Minute, 0}, // ran as long as the threshold: reset
		{10 * s, 30 * s},
		{6 * time.Minute, 0},
		{time.Hour, 0},
	} {
		var got time.Duration
		tk, got = run(tc.ran)
		if got != tc.want {
			t.Errorf("step %d (ran %v): penalty %v, want %v", i, tc.ran, got, tc.want)
		}
		if (tk.Status == Throttled) != (tc.want > 0) {
			t.Errorf("step %d: replacement is %v", i, tk.Status)
		}
	}
}

func TestFlapped(t *testing.T) {
	c := AuroraConfig()
	at := func(d time.Duration) time.Time { return base.Add(d) }
	ev := func(s Status, d time.Duration) TaskEvent { return TaskEvent{Time: at(d), Status: s} }
	m := time.Minute
	for _, tc := range []struct {
		name   string
		events []TaskEvent
		want   bool
	}{
		{"no events", nil, false},
		{"ran 10s", []TaskEvent{ev(Pending, 0), ev(Assigned, 0), ev(Running, 0), ev(Failed, 10*time.Second)}, true},
		{"ran 4m59s", []TaskEvent{ev(Running, 0), ev(Finished, 5*m-time.Second)}, true},
		{"ran 5m", []TaskEvent{ev(Running, 0), ev(Failed, 5*m)}, false},
		{"restarted", []TaskEvent{ev(Running, 0), ev(Restarting, time.Second), ev(Killed, 2*time.Second)}, false},
		{"killed", []TaskEvent{ev(Running, 0), ev(Killing, time.Second), ev(Killed, 2*time.Second)}, false},
		{"drained", []TaskEvent{ev(Running, 0), ev(Draining, time.Second), ev(Killed, 2*time.Second)}, false},
		{"preempted", []TaskEvent{ev(Running, 0), ev(Preempting, time.Second), ev(Killed, 2*time.Second)}, false},
		{"never ran, assigned long ago", []TaskEvent{ev(Pending, 0), ev(Assigned, m), ev(Lost, 6*m)}, false},
		{"never ran, starting briefly", []TaskEvent{ev(Assigned, 0), ev(Starting, 4*m), ev(Failed, 4*m+30*time.Second)}, true},
		{"long run with a partition", []TaskEvent{ev(Running, 0), ev(Partitioned, 10*m), ev(Running, 11*m), ev(Failed, 11*m+30*time.Second)}, false},
		{"not terminated", []TaskEvent{ev(Running, 0)}, false},
		{"only terminal", []TaskEvent{ev(Lost, 0)}, false},
	} {
		if got := c.Flapped(tc.events); got != tc.want {
			t.Errorf("%s: Flapped = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSchedulePenalty(t *testing.T) {
	ms := time.Millisecond
	s := time.Second
	aurora, dev := AuroraConfig(), DevConfig()
	for n, want := range []time.Duration{ms, s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute} {
		if got := aurora.SchedulePenalty(n); got != want {
			t.Errorf("aurora SchedulePenalty(%d) = %v, want %v", n, got, want)
		}
	}
	for n, want := range []time.Duration{0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, s, s} {
		if got := dev.SchedulePenalty(n); got != want {
			t.Errorf("dev SchedulePenalty(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestKillRetryDelay(t *testing.T) {
	s := time.Second
	c := AuroraConfig()
	for n, want := range []time.Duration{0, 15 * s, 30 * s, 60 * s, 120 * s, 240 * s, 300 * s, 300 * s} {
		if got := c.KillRetryDelay(n); got != want {
			t.Errorf("KillRetryDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestTransientDeadline(t *testing.T) {
	c := AuroraConfig()
	for _, s := range append(Statuses(), Deleted) {
		at, ok := c.TransientDeadline(s, base)
		want := s == Assigned || s == Preempting || s == Restarting || s == Killing || s == Draining
		if ok != want {
			t.Errorf("%v: transient = %v, want %v", s, ok, want)
		}
		if ok && !at.Equal(base.Add(5*time.Minute)) {
			t.Errorf("%v: deadline %v", s, at)
		}
	}
	c.TransientTaskStateTimeout = 0
	if _, ok := c.TransientDeadline(Assigned, base); ok {
		t.Error("a zero timeout still times out")
	}
}

func TestStartupScheduleDelay(t *testing.T) {
	c := AuroraConfig()
	if got := c.StartupScheduleDelay(Task{Flaps: 2}, 0.5); got != 15*time.Second+time.Minute {
		t.Errorf("StartupScheduleDelay = %v", got)
	}
	// No random part in the dev profile, only the penalty.
	if got := DevConfig().StartupScheduleDelay(Task{Flaps: 2}, 0.9); got != 2*time.Second {
		t.Errorf("dev StartupScheduleDelay = %v", got)
	}
}

func TestConfigs(t *testing.T) {
	a := AuroraConfig()
	want := Config{
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
	if a != want {
		t.Errorf("AuroraConfig() = %+v, want %+v", a, want)
	}
	d := DevConfig()
	if d.FirstScheduleDelay != 0 || d.MaxRescheduleTaskDelayOnStartup != 0 || d.MaxSchedulePenalty > time.Second {
		t.Errorf("DevConfig() has multi-second waits: %+v", d)
	}
	// It throttles flapping tasks, on a dev scale (issue 15).
	if d.FlappingTaskThreshold != 5*time.Minute || d.InitialFlappingTaskDelay != time.Second || d.MaxFlappingTaskDelay != 30*time.Second {
		t.Errorf("DevConfig() flapping throttle: %+v", d)
	}
}
