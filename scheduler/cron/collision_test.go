package cron

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		policy Policy
		active int
		want   Action
	}{
		{KillExisting, 0, Launch},
		{KillExisting, 1, KillThenLaunch},
		{KillExisting, 5, KillThenLaunch},
		{"", 0, Launch},
		{"", 3, KillThenLaunch}, // unset is KILL_EXISTING
		{CancelNew, 0, Launch},
		{CancelNew, 1, Skip},
		{RunOverlap, 0, Launch},
		{RunOverlap, 2, Skip}, // deprecated: treated as CANCEL_NEW
		{"BOGUS", 0, Launch},
		{"BOGUS", 1, Skip},
		{CancelNew, -1, Launch},
	} {
		if got := Decide(tc.policy, tc.active); got != tc.want {
			t.Errorf("Decide(%q, %d) = %v, want %v", tc.policy, tc.active, got, tc.want)
		}
	}
}

func TestPolicyEffective(t *testing.T) {
	for in, want := range map[Policy]Policy{"": KillExisting, KillExisting: KillExisting, CancelNew: CancelNew, RunOverlap: CancelNew, "X": "X"} {
		if got := in.Effective(); got != want {
			t.Errorf("%q.Effective() = %q, want %q", in, got, want)
		}
	}
}

func TestCheckPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy Policy
		want   string
	}{
		{"", ""},
		{KillExisting, ""},
		{CancelNew, ""},
		{RunOverlap, "The RUN_OVERLAP collision policy has been removed (AURORA-38)."},
		{"kill_existing", `unknown cron collision policy "kill_existing"; want KILL_EXISTING or CANCEL_NEW`},
	} {
		err := CheckPolicy(tc.policy)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckPolicy(%q) = %q, want %q", tc.policy, got, tc.want)
		}
	}
}

func TestKillWait(t *testing.T) {
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := KillWait(i + 1); got != w {
			t.Errorf("KillWait(%d) = %v, want %v", i+1, got, w)
		}
	}
	if KillWait(0) != 5*time.Second || KillWait(1000) != time.Minute {
		t.Error("KillWait bounds")
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Launch: "LAUNCH", KillThenLaunch: "KILL_THEN_LAUNCH", Skip: "SKIP", 0: "Action(0)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(a), a.String(), want)
		}
	}
}
