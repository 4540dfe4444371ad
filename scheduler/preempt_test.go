package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// preemptEnv is a scheduler with a store, a clock of its own and no Mesos:
// tasks are put in place directly, and the slot search is run by hand.
type preemptEnv struct {
	t   *testing.T
	s   *Scheduler
	now time.Time
	ctx context.Context // cancelled: kills are not sent anywhere
	n   int
}

func newPreemptEnv(t *testing.T) *preemptEnv {
	e := &preemptEnv{t: t, now: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := New(Config{DataDir: t.TempDir(), MasterURL: "http://127.0.0.1:1", Now: func() time.Time { return e.now },
		PreemptionDelay: time.Minute, OfferReservation: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.registered = true
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.s, e.ctx = s, ctx
	return e
}

// config is a task of 0.49 CPU and 96 MB (0.5 CPU and 128 MB with the
// default executor overhead) in a tier, with a priority.
func preemptConfig(role, job, tier string, priority int) api.TaskConfig {
	k := api.JobKey{Role: role, Environment: "prod", Name: job}
	tc := api.TaskConfig{Job: k, IsService: true, Tier: tier, Priority: priority,
		Resources: []api.Resource{{NumCpus: ptr(0.49)}, {RAMMb: ptr(int64(96))}}}
	if err := populateTier(&tc); err != nil {
		panic(err)
	}
	return tc
}

func ptr[T any](v T) *T { return &v }

// task adds a task in a status, on an agent unless it is PENDING, whose
// last event is at the env's current time.
func (e *preemptEnv) task(tc api.TaskConfig, status, agent string) string {
	e.n++
	id := fmt.Sprintf("%s-%d", tc.Job.Name, e.n)
	t := &api.ScheduledTask{AssignedTask: api.AssignedTask{TaskID: id, Task: tc, InstanceID: e.n},
		Status: status, TaskEvents: []api.TaskEvent{{Timestamp: nowMS(e.now), Status: status}}}
	if status != "PENDING" {
		t.AssignedTask.SlaveID, t.AssignedTask.SlaveHost = agent, agent+".example"
	}
	e.s.tasks[id] = t
	return id
}

// offer gives the scheduler a held offer of cpus and MB from an agent.
func (e *preemptEnv) offer(agent string, cpus, mem float64) {
	id := fmt.Sprintf("offer-%s-%d", agent, len(e.s.offers))
	e.s.offers[id] = heldOffer{since: e.now, offer: mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: agent},
		Hostname: agent + ".example", Resources: []mesos.Resource{
			{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: cpus}},
			{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: mem}},
		}}}
}

func (e *preemptEnv) status(id string) string {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if t := e.s.tasks[id]; t != nil {
		return t.Status
	}
	return "gone"
}

func (e *preemptEnv) vars() map[string]any {
	v := map[string]any{}
	e.s.mu.Lock()
	e.s.preemptorVars(v)
	e.s.mu.Unlock()
	return v
}

// A production task pending for the preemption delay preempts preemptible
// tasks on one agent, just enough of them: they go PREEMPTING with
// Aurora's message, the agent is kept for the pending task (and nothing
// else), and the next searches leave it alone.
func TestPreemptorPreemptsAfterTheDelay(t *testing.T) {
	e := newPreemptEnv(t)
	batch := preemptConfig("batch", "crunch", "preemptible", 0)
	// Agent a1 is full: 4 preemptible tasks. Agent a2 runs a production
	// task of another role, which nothing may preempt.
	var victims []string
	for range 4 {
		victims = append(victims, e.task(batch, "RUNNING", "a1"))
	}
	other := e.task(preemptConfig("other", "web", "preferred", 0), "RUNNING", "a2")
	e.s.hosts["a1.example"], e.s.hosts["a2.example"] = map[string][]string{}, map[string][]string{}
	// 0.99 CPU and 224 MB: 1 CPU, 256 MB with the overhead; two victims.
	prodTC := preemptConfig("www-data", "web", "preferred", 0)
	prodTC.Resources = []api.Resource{{NumCpus: ptr(0.99)}, {RAMMb: ptr(int64(224))}}
	pending := e.task(prodTC, "PENDING", "")

	e.now = e.now.Add(time.Minute - time.Millisecond)
	if n := e.s.preempt(e.ctx); n != 0 {
		t.Fatalf("preempted %d tasks before the preemption delay", n)
	}
	if v := e.vars(); v["preemptor_slot_search_attempts_for_prod"] != 0 || v["preemptor_task_processor_runs"] != 1 {
		t.Fatalf("vars before the delay: %v", v)
	}

	e.now = e.now.Add(time.Millisecond)
	if n := e.s.preempt(e.ctx); n != 2 {
		t.Fatalf("preempted %d tasks, want 2", n)
	}
	var gone []string
	for _, id := range victims {
		switch st := e.status(id); st {
		case "PREEMPTING":
			gone = append(gone, id)
			tk := e.s.tasks[id]
			if ev := tk.TaskEvents[len(tk.TaskEvents)-1]; ev.Message != "Preempting in favor of "+pending {
				t.Errorf("event of %s: %+v", id, ev)
			}
		case "RUNNING":
		default:
			t.Errorf("victim %s is %s", id, st)
		}
	}
	if fmt.Sprint(gone) != fmt.Sprint(victims[:2]) {
		t.Errorf("preempted %v, want %v", gone, victims[:2])
	}
	if st := e.status(other); st != "RUNNING" {
		t.Errorf("the other role's production task is %s", st)
	}
	if r, ok := e.s.reserved["a1"]; !ok || r.taskID != pending || r.job != prodTC.Job || !r.until.Equal(e.now.Add(3*time.Minute)) {
		t.Errorf("reservations %+v", e.s.reserved)
	}
	// The victims' new status is in the store: a restart would see it.
	snap, err := e.s.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for _, tk := range snap.Tasks {
		stored[tk.AssignedTask.TaskID] = tk.Status
	}
	if stored[victims[0]] != "PREEMPTING" || stored[victims[1]] != "PREEMPTING" {
		t.Errorf("stored: %v", stored)
	}

	// The agent's offers go to the pending task only.
	e.offer("a1", 0.5, 128)
	e.offer("a1", 0.5, 128)
	e.s.mu.Lock()
	offers, byID := e.s.agentOffers()
	if len(offers) != 1 || offers[0].CPUs != 1 || offers[0].MemMB != 256 || len(byID[offers[0].ID]) != 2 {
		t.Errorf("the agent's two offers are not summed: %+v", offers)
	}
	other2 := e.task(batch, "PENDING", "")
	as, _ := e.s.assign(e.s.matcher(), offers, []match.Request{request(e.s.tasks[other2]), request(e.s.tasks[pending])}, nil)
	e.s.mu.Unlock()
	if len(as) != 1 || as[0].TaskID != pending || as[0].AgentID != "a1" {
		t.Errorf("assignments %+v, want only %s on a1", as, pending)
	}

	// Nothing more to do: the pending task has its slot.
	if n := e.s.preempt(e.ctx); n != 0 {
		t.Errorf("preempted %d more tasks", n)
	}
	v := e.vars()
	for name, want := range map[string]int{
		"preemptor_task_processor_runs": 3, "preemptor_slot_search_attempts_for_prod": 1, "preemptor_slot_search_successful_for_prod": 1,
		"preemptor_slot_search_failed_for_prod": 0, "preemptor_tasks_preempted": 2, "preemptor_tasks_preempted_non_prod": 2,
		"preemptor_tasks_preempted_prod": 0, "preemptor_agent_reservations": 1,
	} {
		if v[name] != want {
			t.Errorf("%s = %v, want %d", name, v[name], want)
		}
	}

	// Once the task is no longer PENDING, its agent is free again.
	e.s.mu.Lock()
	e.s.tasks[pending].Status = "ASSIGNED"
	e.s.assign(e.s.matcher(), nil, nil, nil)
	e.s.mu.Unlock()
	if len(e.s.reserved) != 0 {
		t.Errorf("reservations left: %+v", e.s.reserved)
	}
}

// Who preempts whom, end to end through the slot search.
func TestPreemptorRules(t *testing.T) {
	tests := []struct {
		name           string
		pending        api.TaskConfig
		victim         api.TaskConfig
		want           string // the victim's status afterwards
		attempts, fail string // counters that must be 1
	}{
		{"preemptible task does not preempt production", preemptConfig("www-data", "a", "preemptible", 9), preemptConfig("www-data", "b", "preferred", 0),
			"RUNNING", "preemptor_slot_search_attempts_for_non_prod", "preemptor_slot_search_failed_for_non_prod"},
		{"higher priority preemptible preempts lower within the role", preemptConfig("www-data", "a", "preemptible", 2), preemptConfig("www-data", "b", "preemptible", 1),
			"PREEMPTING", "preemptor_slot_search_attempts_for_non_prod", "preemptor_slot_search_successful_for_non_prod"},
		{"not across roles for the same tier", preemptConfig("www-data", "a", "preemptible", 2), preemptConfig("other", "b", "preemptible", 1),
			"RUNNING", "preemptor_slot_search_attempts_for_non_prod", "preemptor_slot_search_failed_for_non_prod"},
		{"production preempts preemptible of another role", preemptConfig("www-data", "a", "preferred", 0), preemptConfig("other", "b", "preemptible", 5),
			"PREEMPTING", "preemptor_slot_search_attempts_for_prod", "preemptor_slot_search_successful_for_prod"},
		{"a revocable victim frees no CPU: no slot", preemptConfig("www-data", "a", "preferred", 0), preemptConfig("other", "b", "revocable", 5),
			"RUNNING", "preemptor_slot_search_attempts_for_prod", "preemptor_slot_search_failed_for_prod"},
		{"same priority production: no slot", preemptConfig("www-data", "a", "preferred", 0), preemptConfig("www-data", "b", "preferred", 0),
			"RUNNING", "preemptor_slot_search_attempts_for_prod", "preemptor_slot_search_failed_for_prod"},
		{"production preempts lower-priority production of its role", preemptConfig("www-data", "a", "preferred", 1), preemptConfig("www-data", "b", "preferred", 0),
			"PREEMPTING", "preemptor_slot_search_attempts_for_prod", "preemptor_slot_search_successful_for_prod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newPreemptEnv(t)
			e.s.hosts["a1.example"] = map[string][]string{}
			v := e.task(tc.victim, "RUNNING", "a1")
			e.task(tc.pending, "PENDING", "")
			e.now = e.now.Add(time.Minute)
			e.s.preempt(e.ctx)
			if st := e.status(v); st != tc.want {
				t.Errorf("victim is %s, want %s", st, tc.want)
			}
			vars := e.vars()
			if vars[tc.attempts] != 1 || vars[tc.fail] != 1 {
				t.Errorf("%s = %v, %s = %v, want 1", tc.attempts, vars[tc.attempts], tc.fail, vars[tc.fail])
			}
		})
	}
}
