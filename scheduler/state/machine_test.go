package state

import (
	"strings"
	"testing"
	"time"
)

func TestTransitionDoesNotAliasInput(t *testing.T) {
	m := &Machine{Config: DevConfig()}
	events := make([]TaskEvent, 1, 8)
	events[0] = TaskEvent{Time: base, Status: Pending}
	tk := Task{ID: "a", Status: Pending, Events: events, PartitionPolicy: &PartitionPolicy{Delay: time.Second}}
	r := m.Transition(tk, Assigned, Event{Time: base.Add(time.Second)})
	if r.Outcome != Success || len(r.Task.Events) != 2 {
		t.Fatalf("result %+v", r)
	}
	r.Task.PartitionPolicy.Delay = time.Hour
	if spare := events[:2][1]; spare.Status != 0 || !spare.Time.IsZero() {
		t.Errorf("Transition wrote into the caller's events array: %+v", spare)
	}
	if tk.PartitionPolicy.Delay != time.Second || tk.Status != Pending || len(tk.Events) != 1 {
		t.Errorf("input task changed: %+v", tk)
	}
}

func TestNewTaskIDRequiredOnlyToReschedule(t *testing.T) {
	m := &Machine{Config: DevConfig()}
	tk := Task{ID: "a", Status: Running, IsService: false}
	if r := m.Transition(tk, Finished, Event{Time: base}); r.Outcome != Success {
		t.Fatalf("outcome %v", r.Outcome)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "NewTaskID") {
			t.Errorf("panic %v", p)
		}
	}()
	m.Transition(tk, Killed, Event{Time: base})
}

func TestFire(t *testing.T) {
	m := &Machine{Config: AuroraConfig(), NewTaskID: func(Task) string { return "b" }}
	tk := m.Transition(Task{ID: "a", Status: Pending}, Assigned, Event{Time: base}).Task
	tms := m.Timers(tk)
	if len(tms) != 1 || tms[0].Kind != TransientTimeout || !tms[0].At.Equal(base.Add(5*time.Minute)) {
		t.Fatalf("timers %+v", tms)
	}
	tm := tms[0]
	if r := m.Fire(tk, tm, tm.At.Add(-time.Nanosecond)); r.Outcome != Stale {
		t.Errorf("early fire: %v", r.Outcome)
	}
	other := tm
	other.TaskID = "x"
	if r := m.Fire(tk, other, tm.At); r.Outcome != Stale {
		t.Errorf("fire for another task: %v", r.Outcome)
	}
	moved := m.Transition(tk, Starting, Event{Time: base.Add(time.Second)}).Task
	if r := m.Fire(moved, tm, tm.At); r.Outcome != Stale || r.Task.Status != Starting {
		t.Errorf("fire after the task moved on: %v %v", r.Outcome, r.Task.Status)
	}
	r := m.Fire(tk, tm, tm.At)
	if r.Outcome != Success || r.Task.Status != Lost || r.Task.Events[len(r.Task.Events)-1].Message != MsgTimedOut {
		t.Errorf("due fire: %+v", r)
	}
}

func TestPartitionHistoryIsCompacted(t *testing.T) {
	m := &Machine{Config: DevConfig()}
	tk := Task{ID: "a", Status: Running, PartitionPolicy: &PartitionPolicy{}, Events: []TaskEvent{{Time: base, Status: Running}}}
	now := base
	for i := 0; i < 50; i++ {
		now = now.Add(time.Minute)
		tk = m.Transition(tk, Partitioned, Event{Time: now}).Task
		now = now.Add(time.Minute)
		tk = m.Transition(tk, Running, Event{Time: now}).Task
	}
	if len(tk.Events) != 3 || tk.Events[0].Time != base || tk.Events[1].Status != Partitioned || tk.Events[2].Status != Running || !tk.Events[2].Time.Equal(now) {
		t.Errorf("history after 50 partitions: %+v", tk.Events)
	}
}

func TestTimersAfterRestart(t *testing.T) {
	m := &Machine{Config: AuroraConfig()}
	at := base.Add(time.Hour)
	for _, tc := range []struct {
		tk   Task
		kind TimerKind
		when time.Duration
	}{
		{Task{Status: Killing}, TransientTimeout, 5 * time.Minute},
		{Task{Status: Throttled, Flaps: 3}, ThrottleEnd, 2 * time.Minute},
		{Task{Status: Partitioned}, PartitionLost, 0},
		{Task{Status: Partitioned, PartitionPolicy: &PartitionPolicy{Reschedule: true, Delay: time.Minute}}, PartitionLost, time.Minute},
		{Task{Status: Partitioned, PartitionPolicy: &PartitionPolicy{Delay: time.Minute}}, 0, 0},
		{Task{Status: Starting}, 0, 0},
		{Task{Status: Running}, 0, 0},
		{Task{Status: Lost}, 0, 0},
	} {
		tc.tk.ID = "a"
		tc.tk.Events = []TaskEvent{{Time: at, Status: tc.tk.Status}}
		tms := m.Timers(tc.tk)
		if tc.kind == 0 {
			if len(tms) != 0 {
				t.Errorf("%v: timers %+v", tc.tk.Status, tms)
			}
			continue
		}
		if len(tms) != 1 || tms[0].Kind != tc.kind || !tms[0].At.Equal(at.Add(tc.when)) || tms[0].Status != tc.tk.Status || !tms[0].Since.Equal(at) {
			t.Errorf("%v: timers %+v, want %v at +%v", tc.tk.Status, tms, tc.kind, tc.when)
		}
	}
}
