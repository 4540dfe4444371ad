package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	schedpb "github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// knobEnv is a scheduler with a store, a clock and random numbers of its
// own, and a fake Mesos master that records the calls it is sent. No loop
// runs: the tests call what the loops would.
type knobEnv struct {
	t   *testing.T
	cfg Config
	s   *Scheduler
	ctx context.Context

	mu    sync.Mutex
	now   time.Time
	calls []*schedpb.Call
	// called gets a value for every call recorded.
	called chan struct{}
	offers int
}

var knobT0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func newKnobEnv(t *testing.T, configure func(*Config)) *knobEnv {
	e := &knobEnv{t: t, now: knobT0, ctx: context.Background(), called: make(chan struct{}, 1000)}
	e.cfg = Config{DataDir: t.TempDir(), MasterURL: "http://127.0.0.1:1", User: "root", ExecutorPath: "/bin/aurorabox",
		Now: e.clock, Rand: func() float64 { return 0.5 }}
	if configure != nil {
		configure(&e.cfg)
	}
	e.open()
	return e
}

// open (re)opens the scheduler on the env's store, registered.
func (e *knobEnv) open() {
	s, err := New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	s.fw = &framework{caller: calls.CallerFunc(func(_ context.Context, c *schedpb.Call) (mesos.Response, error) {
		e.mu.Lock()
		e.calls = append(e.calls, c)
		e.mu.Unlock()
		e.called <- struct{}{}
		return nil, nil
	})}
	s.registered = true
	e.s = s
}

// restart closes the scheduler and opens a new one on the same store.
func (e *knobEnv) restart() {
	e.s.Close()
	e.open()
}

func (e *knobEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *knobEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// take returns the calls recorded since the last take.
func (e *knobEnv) take() []*schedpb.Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.calls
	e.calls = nil
	for len(e.called) > 0 {
		<-e.called
	}
	return out
}

// launched returns the tasks launched by the ACCEPT calls since the last
// take.
func (e *knobEnv) launched() []mesos.TaskInfo {
	var out []mesos.TaskInfo
	for _, c := range e.take() {
		if c.Type != schedpb.Call_ACCEPT {
			continue
		}
		for _, op := range c.Accept.Operations {
			if op.Launch != nil {
				out = append(out, op.Launch.TaskInfos...)
			}
		}
	}
	return out
}

func knobJob(name string, instances int) api.JobConfiguration {
	k := api.JobKey{Role: "www-data", Environment: "prod", Name: name}
	return api.JobConfiguration{Key: k, Owner: api.Identity{User: "www-data"}, InstanceCount: instances,
		TaskConfig: api.TaskConfig{Job: k, IsService: true, Resources: []api.Resource{{NumCpus: ptr(0.1)}, {RAMMb: ptr(int64(16))}},
			ExecutorConfig: api.ExecutorConfig{Name: ExecutorName, Data: `{"name": "` + name + `"}`}}}
}

func (e *knobEnv) create(name string, instances int) {
	e.t.Helper()
	if err := e.s.CreateJob(e.ctx, knobJob(name, instances)); err != nil {
		e.t.Fatal(err)
	}
}

// offer gives the scheduler an offer from an agent with plenty of room.
func (e *knobEnv) offer(agent string, mod ...func(*mesos.Offer)) {
	e.offers++
	id := fmt.Sprintf("offer-%s-%d", agent, e.offers)
	o := mesos.Offer{ID: mesos.OfferID{Value: id}, AgentID: mesos.AgentID{Value: agent}, Hostname: agent, Resources: []mesos.Resource{
		{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 100}},
		{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 100000}},
	}}
	for _, m := range mod {
		m(&o)
	}
	e.s.onOffers(e.ctx, []mesos.Offer{o})
}

// statuses counts the job's tasks by status.
func (e *knobEnv) statuses(name string) map[string]int {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	out := map[string]int{}
	for _, t := range e.s.tasks {
		if t.AssignedTask.Task.Job.Name == name {
			out[t.Status]++
		}
	}
	return out
}

func (e *knobEnv) vars() map[string]any { return e.s.vars() }

// Scheduling attempts take one task group each, up to
// MaxTasksPerScheduleAttempt of its tasks; a round makes up to
// SchedulingMaxBatchSize of them, groups taking turns, and no more than
// MaxScheduleAttemptsPerSec allows (a second's worth at once).
func TestSchedulingBatchesAndRateLimit(t *testing.T) {
	e := newKnobEnv(t, func(c *Config) {
		c.SchedulingMaxBatchSize, c.MaxTasksPerScheduleAttempt, c.MaxScheduleAttemptsPerSec = 2, 3, 4
	})
	for _, j := range []string{"a", "b", "c"} {
		e.create(j, 5)
	}
	assigned := func() string {
		return fmt.Sprint(e.statuses("a")["ASSIGNED"], e.statuses("b")["ASSIGNED"], e.statuses("c")["ASSIGNED"])
	}
	e.offer("agent-1")
	next := e.s.scheduleRound(e.ctx)
	if got := assigned(); got != "3 3 0" {
		t.Fatalf("first round: ASSIGNED a b c = %s, want 3 3 0 (2 attempts of 3 tasks)", got)
	}
	launched := e.launched()
	if len(launched) != 6 {
		t.Fatalf("first round launched %d tasks in its ACCEPT, want 6", len(launched))
	}
	if !next.Equal(knobT0) {
		t.Fatalf("first round: next round at %v, want now (tasks and rate permits left)", next)
	}

	// c has not been tried yet and goes first, then a (tried before b).
	e.offer("agent-1")
	next = e.s.scheduleRound(e.ctx)
	if got := assigned(); got != "5 3 3" {
		t.Fatalf("second round: ASSIGNED a b c = %s, want 5 3 3", got)
	}
	// The 4 permits of the first second are used up: the next one is a
	// quarter of a second later.
	if want := knobT0.Add(250 * time.Millisecond); !next.Equal(want) {
		t.Fatalf("second round: next round at %v, want %v", next, want)
	}
	e.take()
	e.offer("agent-1")
	if n := e.s.scheduleRound(e.ctx); !n.Equal(next) || assigned() != "5 3 3" || len(e.launched()) != 0 {
		t.Fatalf("a round without a rate permit placed tasks: %s, next %v", assigned(), n)
	}
	e.advance(250 * time.Millisecond)
	next = e.s.scheduleRound(e.ctx)
	if got := assigned(); got != "5 5 3" {
		t.Fatalf("third round: ASSIGNED a b c = %s, want 5 5 3 (one permit: b's attempt)", got)
	}
	if want := knobT0.Add(500 * time.Millisecond); !next.Equal(want) {
		t.Fatalf("third round: next round at %v, want %v", next, want)
	}
	e.advance(250 * time.Millisecond)
	e.offer("agent-1")
	if next = e.s.scheduleRound(e.ctx); assigned() != "5 5 5" || !next.IsZero() {
		t.Fatalf("last round: ASSIGNED a b c = %s, next %v (want 5 5 5, none)", assigned(), next)
	}
	v := e.vars()
	if v["schedule_attempts_fired"] != 15 || v["schedule_attempts_no_match"] != 0 || v["schedule_queue_size"] != 0 {
		t.Errorf("vars: fired %v, no match %v, queue %v", v["schedule_attempts_fired"], v["schedule_attempts_no_match"], v["schedule_queue_size"])
	}
}

// The launched TaskInfo is Aurora's: named role/env/job, executor
// thermos-<taskId>, the assigned task in data.
func TestLaunchedTaskInfo(t *testing.T) {
	e := newKnobEnv(t, nil)
	e.create("web", 1)
	e.offer("agent-1")
	e.s.scheduleRound(e.ctx)
	launched := e.launched()
	if len(launched) != 1 {
		t.Fatalf("launched %d tasks", len(launched))
	}
	ti := launched[0]
	id := ti.TaskID.Value
	if ti.Name != "www-data/prod/web" {
		t.Errorf("TaskInfo name %q, want www-data/prod/web", ti.Name)
	}
	if ti.Executor == nil || ti.Executor.ExecutorID.Value != "thermos-"+id || ti.Executor.GetName() != "AuroraExecutor" {
		t.Errorf("executor %+v, want id thermos-%s named AuroraExecutor", ti.Executor, id)
	}
	var at api.AssignedTask
	if err := json.Unmarshal(ti.Data, &at); err != nil || at.TaskID != id || at.SlaveHost != "agent-1" || at.Task.ExecutorConfig.Data != `{"name": "web"}` {
		t.Errorf("data: %+v, %v", at, err)
	}
	if ti.Discovery == nil || ti.Discovery.GetName() != "web.prod.www-data" {
		t.Errorf("discovery %+v", ti.Discovery)
	}
}

// A new task group waits FirstScheduleDelay; an attempt that places
// nothing puts it off by the schedule penalty, doubling up to its
// maximum, even when an offer comes meanwhile; the PENDING tasks found at
// a start wait a random share of MaxRescheduleTaskDelayOnStartup.
func TestSchedulePenalties(t *testing.T) {
	tc := state.DevConfig()
	tc.FirstScheduleDelay, tc.InitialSchedulePenalty, tc.MaxSchedulePenalty = 2*time.Second, time.Second, 4*time.Second
	tc.MaxRescheduleTaskDelayOnStartup = 30 * time.Second
	e := newKnobEnv(t, func(c *Config) { c.Timings = &tc })
	e.create("web", 1)
	var nexts []time.Duration
	for i := range 6 {
		next := e.s.scheduleRound(e.ctx)
		nexts = append(nexts, next.Sub(knobT0))
		if i < 5 {
			e.advance(next.Sub(e.clock()))
		}
	}
	if got := fmt.Sprint(nexts); got != "[2s 3s 5s 9s 13s 17s]" {
		t.Fatalf("rounds due at %s, want [2s 3s 5s 9s 13s 17s] (first delay 2s, then 1s, 2s, 4s, 4s, 4s)", got)
	}
	if v := e.vars(); v["schedule_attempts_fired"] != 5 || v["schedule_attempts_no_match"] != 5 {
		t.Fatalf("vars: %v fired, %v no match; want 5 and 5", v["schedule_attempts_fired"], v["schedule_attempts_no_match"])
	}
	// Now at 13 s, with the next attempt at 17 s: an offer at 16 s waits.
	e.advance(3 * time.Second)
	e.offer("agent-1")
	if next := e.s.scheduleRound(e.ctx); e.statuses("web")["PENDING"] != 1 || !next.Equal(knobT0.Add(17*time.Second)) {
		t.Fatalf("a penalized group was tried early: %v, next %v", e.statuses("web"), next)
	}
	e.advance(time.Second)
	if next := e.s.scheduleRound(e.ctx); e.statuses("web")["ASSIGNED"] != 1 || !next.IsZero() {
		t.Fatalf("after the penalty: %v, next %v", e.statuses("web"), next)
	}

	// At a start, a stored PENDING task waits half (Rand 0.5) of 30 s.
	e.create("batch", 1)
	e.restart()
	start := e.clock()
	e.s.start()
	e.offer("agent-1")
	if next := e.s.scheduleRound(e.ctx); e.statuses("batch")["PENDING"] != 1 || !next.Equal(start.Add(15*time.Second)) {
		t.Fatalf("after the start: %v, next %v; want PENDING until 15 s", e.statuses("batch"), next)
	}
	e.advance(15 * time.Second)
	if e.s.scheduleRound(e.ctx); e.statuses("batch")["ASSIGNED"] != 1 {
		t.Fatalf("after the startup delay: %v", e.statuses("batch"))
	}
}

// An unused offer is held OfferHold plus its share of OfferHoldJitter, and
// declined with OfferFilterDuration as refuse_seconds.
func TestOfferHoldJitterAndDeclineFilter(t *testing.T) {
	for _, c := range []struct {
		filter time.Duration
		want   float64
	}{{5 * time.Second, 5}, {0, 0}} {
		e := newKnobEnv(t, func(cfg *Config) {
			cfg.OfferHold, cfg.OfferHoldJitter, cfg.OfferFilterDuration = time.Minute, time.Minute, c.filter
		})
		e.offer("agent-1")
		// Rand 0.5: held 1 min + 30 s.
		e.advance(90*time.Second - time.Millisecond)
		e.s.declineStale(e.ctx)
		if calls := e.take(); len(calls) != 0 {
			t.Fatalf("declined before the jittered hold time: %v", calls)
		}
		e.advance(time.Millisecond)
		e.s.declineStale(e.ctx)
		calls := e.take()
		if len(calls) != 1 || calls[0].Type != schedpb.Call_DECLINE {
			t.Fatalf("calls after the hold time: %v", calls)
		}
		f := calls[0].Decline.Filters
		if f == nil || f.RefuseSeconds == nil || *f.RefuseSeconds != c.want {
			t.Errorf("filter %v: DECLINE filters %v, want refuse_seconds %v", c.filter, f, c.want)
		}
	}
}

// An agent stops taking tasks UnavailabilityThreshold before its Mesos
// maintenance window.
func TestUnavailabilityThreshold(t *testing.T) {
	for _, c := range []struct {
		threshold, startsIn time.Duration
		placed              bool
	}{
		{0, 3 * time.Minute, true}, // default: 1 min
		{0, 30 * time.Second, false},
		{AuroraUnavailabilityThreshold, 3 * time.Minute, false},
		{-1, 30 * time.Second, true}, // none
	} {
		e := newKnobEnv(t, func(cfg *Config) { cfg.UnavailabilityThreshold = c.threshold })
		e.create("web", 1)
		start := mesos.TimeInfo{Nanoseconds: knobT0.Add(c.startsIn).UnixNano()}
		e.offer("agent-1", func(o *mesos.Offer) { o.Unavailability = &mesos.Unavailability{Start: start} })
		e.s.scheduleRound(e.ctx)
		if placed := e.statuses("web")["ASSIGNED"] == 1; placed != c.placed {
			t.Errorf("threshold %v, maintenance in %v: placed %v, want %v (vetoes %v)", c.threshold, c.startsIn, placed, c.placed, e.s.vetoes)
		}
	}
}

// Partition aware (the default here): registered with the capability, a
// TASK_UNREACHABLE task goes PARTITIONED. Without: no capability, and the
// task goes LOST and is replaced.
func TestPartitionAware(t *testing.T) {
	for _, aware := range []bool{true, false} {
		e := newKnobEnv(t, func(c *Config) { c.DisablePartitionAware = !aware })
		caps := e.s.frameworkInfo("").Capabilities
		if has := hasCapability(caps, mesos.FrameworkInfo_Capability_PARTITION_AWARE); has != aware {
			t.Errorf("partition aware %v: capabilities %v", aware, caps)
		}
		// A policy that keeps a PARTITIONED task PARTITIONED.
		j := knobJob("web", 1)
		j.TaskConfig.PartitionPolicy = &api.PartitionPolicy{Reschedule: false}
		if err := e.s.CreateJob(e.ctx, j); err != nil {
			t.Fatal(err)
		}
		e.offer("agent-1")
		e.s.scheduleRound(e.ctx)
		launched := e.launched()
		if len(launched) != 1 {
			t.Fatalf("launched %v", launched)
		}
		id := launched[0].TaskID
		update := func(st mesos.TaskState) {
			e.s.onUpdate(e.ctx, mesos.TaskStatus{TaskID: id, State: st.Enum(), AgentID: &mesos.AgentID{Value: "agent-1"}})
		}
		update(mesos.TASK_RUNNING)
		update(mesos.TASK_UNREACHABLE)
		want := map[string]int{"PARTITIONED": 1}
		if !aware {
			// LOST and replaced; the task ran for no time, so the dev
			// profile throttles its replacement as flapping.
			want = map[string]int{"LOST": 1, "THROTTLED": 1}
		}
		if got := e.statuses("web"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition aware %v: after TASK_UNREACHABLE %v, want %v", aware, got, want)
		}
	}
}

// Reconciliation waits ReconcileInitialDelay after the start; then a
// registration reconciles at once (explicitly in batches, then
// implicitly), and the periodic runs follow their own intervals, the
// implicit ones ReconcileScheduleSpread behind.
func TestReconciliationSchedule(t *testing.T) {
	e := newKnobEnv(t, func(c *Config) {
		c.ReconcileInitialDelay, c.ReconcileScheduleSpread = time.Minute, 30*time.Minute
		c.ReconcileExplicitInterval, c.ReconcileImplicitInterval = time.Hour, 2*time.Hour
		c.ReconcileExplicitBatchSize, c.ReconcileExplicitBatchInterval = 2, 5*time.Second
	})
	e.create("web", 5)
	e.offer("agent-1")
	e.s.scheduleRound(e.ctx)
	e.take()
	e.s.registered = false
	e.s.start()

	kinds := func(calls []*schedpb.Call) string {
		var out []string
		for _, c := range calls {
			if c.Type == schedpb.Call_RECONCILE {
				out = append(out, fmt.Sprintf("reconcile(%d)", len(c.Reconcile.Tasks)))
			}
		}
		return fmt.Sprint(out)
	}
	// Registered before the initial delay: no reconciliation yet.
	if err := e.s.onSubscribed(e.ctx, "fw-1"); err != nil {
		t.Fatal(err)
	}
	if got := kinds(e.take()); got != "[]" {
		t.Fatalf("reconciled before the initial delay: %s", got)
	}
	var waits []time.Duration
	release := make(chan time.Time)
	e.s.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		return release
	}
	// The periodic schedule, on the env's clock.
	var runs []string
	for _, at := range []time.Duration{59 * time.Second, time.Minute, 31 * time.Minute, 61 * time.Minute, 151 * time.Minute} {
		explicit, implicit := e.s.recon.due(knobT0.Add(at))
		runs = append(runs, fmt.Sprintf("%v:%v/%v", at, explicit, implicit))
	}
	if got := fmt.Sprint(runs); got != "[59s:false/false 1m0s:true/false 31m0s:false/true 1h1m0s:true/false 2h31m0s:true/true]" {
		t.Errorf("periodic runs %s", got)
	}
	// Registered again after the delay: at once, the first of the 3
	// batches of 2 now, the others 5 s apart, then implicitly.
	e.advance(time.Minute)
	if err := e.s.onSubscribed(e.ctx, "fw-1"); err != nil {
		t.Fatal(err)
	}
	if got := kinds(e.take()); got != "[reconcile(2) reconcile(0)]" {
		t.Fatalf("at registration: %s", got)
	}
	for range 2 {
		release <- time.Time{}
		<-e.called
	}
	if got := kinds(e.take()); got != "[reconcile(2) reconcile(1)]" || fmt.Sprint(waits) != "[5s 5s]" {
		t.Fatalf("later batches: %s after waits %v", got, waits)
	}
}

// addTask stores a task of job whose last event, in status, was at end.
func (e *knobEnv) addTask(j api.JobConfiguration, id, status string, end time.Time) {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	tx := e.s.begin()
	if _, ok := e.s.cronJobs[j.Key]; !ok && j.CronSchedule != "" {
		e.s.cronJobs[j.Key] = &j
		tx.jobs = append(tx.jobs, j)
	}
	e.s.tasks[id] = &api.ScheduledTask{AssignedTask: api.AssignedTask{TaskID: id, Task: j.TaskConfig},
		Status: status, TaskEvents: []api.TaskEvent{{Timestamp: nowMS(end.Add(-time.Minute)), Status: "RUNNING"}, {Timestamp: nowMS(end), Status: status}}}
	tx.dirty[id] = true
	if err := tx.commit(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *knobEnv) taskIDs() string {
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	var ids []string
	for id := range e.s.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return fmt.Sprint(ids)
}

func (e *knobEnv) jobNames() string {
	var names []string
	for _, j := range e.s.Jobs("") {
		names = append(names, j.Key.Name)
	}
	return fmt.Sprint(names)
}

// History pruning keeps the HistoryMaxPerJob newest terminal tasks of a
// job, and no older terminal task once it has been terminal for
// HistoryMinRetention; any terminal task goes after HistoryPruneThreshold;
// a job is listed while it has an active task or is a cron job. It is stored.
func TestHistoryPruning(t *testing.T) {
	e := newKnobEnv(t, func(c *Config) {
		c.HistoryMaxPerJob, c.HistoryMinRetention, c.HistoryPruneThreshold = 2, time.Hour, 48*time.Hour
	})
	web, old, cron := knobJob("web", 1), knobJob("old", 1), knobJob("cron", 1)
	cron.CronSchedule, cron.TaskConfig.IsService = "* * * * *", false
	ago := func(d time.Duration) time.Time { return knobT0.Add(-d) }
	// web: 7 terminal tasks and a running one.
	for i, d := range []time.Duration{5 * time.Hour, 4 * time.Hour, 3 * time.Hour, 2 * time.Hour, 50 * time.Minute, 40 * time.Minute, 10 * time.Minute} {
		e.addTask(web, fmt.Sprintf("web-%d", i), []string{"FAILED", "KILLED", "LOST", "FINISHED"}[i%4], ago(d))
	}
	e.addTask(web, "web-running", "RUNNING", ago(6*time.Hour))
	// old: its only task ended more than 48 h ago; so did cron's.
	e.addTask(old, "old-0", "FINISHED", ago(49*time.Hour))
	e.addTask(cron, "cron-0", "FINISHED", ago(49*time.Hour))
	e.addTask(cron, "cron-1", "FINISHED", ago(47*time.Hour))

	n, next := e.s.pruneHistory()
	// web keeps its 2 newest (10 and 40 min) and the 50 min one (younger
	// than the retention); old and cron-0 are past the prune threshold.
	want := "[cron-1 web-4 web-5 web-6 web-running]"
	if got := e.taskIDs(); n != 6 || got != want {
		t.Fatalf("pruned %d, left %s; want 6, %s", n, got, want)
	}
	if got := e.jobNames(); got != "[cron web]" {
		t.Fatalf("jobs left %s, want [cron web] (old has no task left)", got)
	}
	// Next: web-4 is 1 h old in 10 min.
	if want := knobT0.Add(10 * time.Minute); !next.Equal(want) {
		t.Fatalf("next pruning at %v, want %v", next, want)
	}
	e.advance(10 * time.Minute)
	if n, _ := e.s.pruneHistory(); n != 1 || e.taskIDs() != "[cron-1 web-5 web-6 web-running]" {
		t.Fatalf("10 min later: pruned %d, left %s", n, e.taskIDs())
	}
	e.restart()
	if got := e.taskIDs(); got != "[cron-1 web-5 web-6 web-running]" || e.jobNames() != "[cron web]" {
		t.Fatalf("after a restart: tasks %s, jobs %s", got, e.jobNames())
	}
}

// A timer armed by a transition fires in the same process even when the
// clock is not on a whole millisecond (task events are stored in ms): a
// task PARTITIONED under the default partition policy goes LOST at once
// and is replaced.
func TestTimersFireOffTheMillisecond(t *testing.T) {
	e := newKnobEnv(t, nil)
	e.advance(1234567 * time.Nanosecond)
	e.create("web", 1)
	e.offer("agent-1")
	e.s.scheduleRound(e.ctx)
	launched := e.launched()
	if len(launched) != 1 {
		t.Fatalf("launched %v", launched)
	}
	id := launched[0].TaskID.Value
	e.s.mu.Lock()
	tx := e.s.begin()
	tx.transition(id, state.Running, "")
	tx.transition(id, state.Partitioned, "")
	timers := tx.timers
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	var fired state.Outcome
	if len(timers) == 1 {
		fired = e.s.machine().Fire(e.s.machineTask(e.s.tasks[id]), timers[len(timers)-1], e.clock()).Outcome
	}
	e.s.mu.Unlock()
	if len(timers) != 1 || fired != state.Success {
		t.Fatalf("timers %+v: firing the partition one: outcome %v, want success", timers, fired)
	}
	// Through onUpdate, the armed timer moves the task on by itself.
	e.create("api", 1)
	e.offer("agent-1")
	e.s.scheduleRound(e.ctx)
	var api *mesos.TaskInfo
	for _, ti := range e.launched() {
		if ti.Name == "www-data/prod/api" {
			api = &ti
		}
	}
	if api == nil {
		t.Fatal("api not launched")
	}
	for _, st := range []mesos.TaskState{mesos.TASK_RUNNING, mesos.TASK_UNREACHABLE} {
		e.s.onUpdate(e.ctx, mesos.TaskStatus{TaskID: api.TaskID, State: st.Enum(), AgentID: &mesos.AgentID{Value: "agent-1"}})
	}
	// (The replacement of a task that ran for no time is THROTTLED as
	// flapping.)
	for deadline := time.Now().Add(30 * time.Second); fmt.Sprint(e.statuses("api")) != "map[LOST:1 THROTTLED:1]"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the PARTITIONED task did not go LOST: %v", e.statuses("api"))
		}
	}
}

func hasCapability(caps []mesos.FrameworkInfo_Capability, t mesos.FrameworkInfo_Capability_Type) bool {
	for _, c := range caps {
		if c.Type == t {
			return true
		}
	}
	return false
}

// TestReceiveRevocableResources: the scheduler registers REVOCABLE_RESOURCES
// unless DisableRevocableResources (--receive-revocable-resources=false).
func TestReceiveRevocableResources(t *testing.T) {
	for _, receive := range []bool{true, false} {
		e := newKnobEnv(t, func(c *Config) { c.DisableRevocableResources = !receive })
		caps := e.s.frameworkInfo("").Capabilities
		if has := hasCapability(caps, mesos.FrameworkInfo_Capability_REVOCABLE_RESOURCES); has != receive {
			t.Errorf("receive revocable %v: capabilities %v", receive, caps)
		}
	}
}

// Each task's executor gets the configured overhead on top of the task's own
// resources, and an offer must hold both: the dev profile's small default,
// or Aurora 0.11's 0.25 cpus and 128 MB (the aurora profile's).
func TestExecutorOverhead(t *testing.T) {
	for _, c := range []struct {
		name     string
		overhead *Overhead
		want     Overhead
	}{
		{"default", nil, DevExecutorOverhead},
		{"aurora", &AuroraExecutorOverhead, Overhead{CPUs: 0.25, MemMB: 128}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newKnobEnv(t, func(cfg *Config) {
				if c.overhead != nil {
					cfg.Overhead = *c.overhead
				}
			})
			e.create("web", 1) // 0.1 cpus, 16 MB
			sized := func(cpus, mem float64) func(*mesos.Offer) {
				return func(o *mesos.Offer) {
					o.Resources[0].Scalar.Value, o.Resources[1].Scalar.Value = cpus, mem
				}
			}
			// Room for the task but not for its executor's memory.
			e.offer("agent-1", sized(0.1+c.want.CPUs, 16+c.want.MemMB-1))
			e.s.scheduleRound(e.ctx)
			if n := len(e.launched()); n != 0 || e.statuses("web")["PENDING"] != 1 {
				t.Fatalf("launched %d tasks on an offer 1 MB short of task plus overhead: %v", n, e.statuses("web"))
			}
			e.advance(time.Minute)
			e.offer("agent-2", sized(0.1+c.want.CPUs, 16+c.want.MemMB))
			e.s.scheduleRound(e.ctx)
			launched := e.launched()
			if len(launched) != 1 || launched[0].Executor == nil {
				t.Fatalf("launched %+v on an offer of exactly task plus overhead", launched)
			}
			var cpus, mem float64
			for _, r := range launched[0].Executor.Resources {
				switch r.Name {
				case "cpus":
					cpus = r.GetScalar().GetValue()
				case "mem":
					mem = r.GetScalar().GetValue()
				}
			}
			if (Overhead{CPUs: cpus, MemMB: mem}) != c.want {
				t.Errorf("executor resources %v cpus %v MB, want %+v", cpus, mem, c.want)
			}
		})
	}
}
