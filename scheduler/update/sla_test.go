package update

import (
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/state"
)

// TestSlaAwareKills: with MayKill, held kills record one SLA check per
// instance and ask for a look at the retry time; an allowed kill is made
// one per Evaluate, and never in an Evaluate that made another change.
func TestSlaAwareKills(t *testing.T) {
	now := base
	u, _ := New(Settings{Strategy: Strategy{Kind: Batch, GroupSizes: []int{2}}},
		[]Instance{{ID: 0, Initial: "A", Desired: "B"}, {ID: 1, Initial: "A", Desired: "B"}}, now, "u", "")
	tasks := map[int][]Task{
		0: {{ID: "t0", Config: "A", Status: state.Running, Since: now}},
		1: {{ID: "t1", Config: "A", Status: state.Running, Since: now}},
	}
	allow, asked := false, 0
	retry := now.Add(time.Minute)
	v := View{Tasks: tasks, MayKill: func(int, Task) (bool, time.Time) { asked++; return allow, retry }}

	r := u.Evaluate(now, v)
	if len(r.Commands) != 0 || asked != 2 || !r.Wake.Equal(retry) {
		t.Fatalf("held: commands %+v, asked %d, wake %v", r.Commands, asked, r.Wake)
	}
	checks := 0
	for _, e := range r.InstanceEvents {
		if e.Message == SlaChecking {
			checks++
		}
	}
	if checks != 2 {
		t.Fatalf("instance events %+v", r.InstanceEvents)
	}
	if r = u.Evaluate(now, v); len(r.InstanceEvents) != 0 {
		t.Fatalf("SLA check recorded again: %+v", r.InstanceEvents)
	}

	allow = true
	r = u.Evaluate(now, v)
	if len(r.Commands) != 1 || r.Commands[0].TaskID != "t0" || !r.Again ||
		len(r.InstanceEvents) != 1 || r.InstanceEvents[0].Message != SlaPassed {
		t.Fatalf("allowed: %+v", r)
	}
	tasks[0][0].Status = state.Killed
	asked = 0
	r = u.Evaluate(now, v)
	if len(r.Commands) != 1 || r.Commands[0].Kind != AddTask || asked != 0 {
		t.Fatalf("with an add: commands %+v, asked %d", r.Commands, asked)
	}
}
