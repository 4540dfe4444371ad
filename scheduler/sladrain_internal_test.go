package scheduler

import (
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// TestMeetsSla is the count and percentage arithmetic, with the
// relaxation of a policy that would let no instance go.
func TestMeetsSla(t *testing.T) {
	count := func(n int64) api.SlaPolicy { return api.SlaPolicy{CountSlaPolicy: &api.CountSlaPolicy{Count: n}} }
	pct := func(p float64) api.SlaPolicy {
		return api.SlaPolicy{PercentageSlaPolicy: &api.PercentageSlaPolicy{Percentage: p}}
	}
	for _, c := range []struct {
		name      string
		p         api.SlaPolicy
		up, total int
		want      bool
	}{
		{"count 1 of 2, other up", count(1), 1, 2, true},
		{"count 1 of 2, other down", count(1), 0, 2, false},
		{"count 2 of 2 lets one go", count(2), 1, 2, true},
		{"count 5 of 3 needs 2", count(5), 1, 3, false},
		{"count 5 of 3 with 2 up", count(5), 2, 3, true},
		{"count 0", count(0), 0, 2, true},
		{"50% of 2, other up", pct(50), 1, 2, true},
		{"50% of 2, other down", pct(50), 0, 2, false},
		{"95% of 2 lets one go", pct(95), 1, 2, true},
		{"95% of 100 with 95 up", pct(95), 95, 100, true},
		{"95% of 100 with 94 up", pct(95), 94, 100, false},
		{"a single instance may go", pct(100), 0, 1, true},
		{"no instances", count(3), 0, 0, true},
	} {
		if got := meetsSla(c.p, c.up, c.total); got != c.want {
			t.Errorf("%s: meetsSla(up %d, total %d) = %v", c.name, c.up, c.total, got)
		}
	}
}

func TestRunningLongerThan(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration, status string) api.TaskEvent {
		return api.TaskEvent{Timestamp: nowMS(now.Add(-d)), Status: status}
	}
	task := &api.ScheduledTask{Status: "RUNNING", TaskEvents: []api.TaskEvent{
		at(10*time.Minute, "PENDING"), at(9*time.Minute, "RUNNING"), at(2*time.Minute, "PARTITIONED"), at(time.Minute, "RUNNING")}}
	if !runningLongerThan(task, 59*time.Second, now) || runningLongerThan(task, time.Minute, now) {
		t.Error("the latest RUNNING event, one minute ago, is not what counts")
	}
	task.Status = "KILLING"
	if runningLongerThan(task, 0, now) {
		t.Error("a KILLING task counted as up")
	}
}
