package scheduler

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
)

// An agent a job update reserved for an instance's new task
// (KILL_TASK_AND_RESERVE) takes that task, even when another offer comes
// first, and no other; the task waits for it while the reservation holds,
// and an expired reservation frees the agent.
func TestReservedAgents(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Scheduler{cfg: Config{Now: func() time.Time { return now }, UpdateReservation: time.Minute},
		reserved: map[string]reservation{}, hosts: map[string]map[string][]string{}}
	web := api.JobKey{Role: "www-data", Environment: "prod", Name: "web"}
	s.reserve("agent-b", web, 1, now)
	offer := func(agent string) match.Offer {
		return match.Offer{ID: "offer-" + agent, AgentID: agent, Hostname: agent, CPUs: 4, MemMB: 4096, DiskMB: 4096}
	}
	req := func(id, job string, instance int) match.Request {
		return match.Request{TaskID: id, Job: match.JobKey{Role: "www-data", Environment: "prod", Name: job}, Instance: instance, CPUs: 1, MemMB: 64}
	}
	placed := func(offers []match.Offer, reqs ...match.Request) string {
		as, _ := s.assign(match.NewMatcher(now), offers, reqs, nil)
		var out []string
		for _, a := range as {
			out = append(out, a.TaskID+"@"+a.AgentID)
		}
		sort.Strings(out)
		return fmt.Sprint(out)
	}
	both := []match.Offer{offer("agent-a"), offer("agent-b")}
	if got := placed(both, req("web-0", "web", 0), req("web-1", "web", 1), req("other-1", "other", 1)); got != "[other-1@agent-a web-0@agent-a web-1@agent-b]" {
		t.Errorf("with both offers: %s", got)
	}
	if got := placed(both[:1], req("web-1", "web", 1)); got != "[]" {
		t.Errorf("the reserved task did not wait for its agent: %s", got)
	}
	if got := placed(both[1:], req("other-1", "other", 1)); got != "[]" {
		t.Errorf("another task got the reserved agent: %s", got)
	}
	s.releaseReservation(web, 1)
	if got := placed(both[1:], req("other-1", "other", 1)); got != "[other-1@agent-b]" {
		t.Errorf("after the release: %s", got)
	}
	s.reserve("agent-b", web, 1, now)
	now = now.Add(2 * time.Minute)
	if got := placed(both[1:], req("other-1", "other", 1)); got != "[other-1@agent-b]" || len(s.reserved) != 0 {
		t.Errorf("after the reservation expired: %s, %v", got, s.reserved)
	}
	s.reserve("agent-b", web, 1, now)
	s.releaseReservations(web)
	if len(s.reserved) != 0 {
		t.Errorf("reservations left after the update: %v", s.reserved)
	}
}
