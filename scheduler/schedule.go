package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Scheduling (§5.3), in the manner of Aurora's task groups: PENDING tasks
// with the same job and configuration form a task group, and groups are
// tried one at a time. A scheduling attempt takes up to
// MaxTasksPerScheduleAttempt tasks of one group whose penalty has passed;
// attempts are rate-limited to MaxScheduleAttemptsPerSec, and up to
// SchedulingMaxBatchSize of them are matched against the held offers and
// stored together. A group is first tried FirstScheduleDelay after it
// appears (a random share of MaxRescheduleTaskDelayOnStartup, plus any
// flapping penalty, for the tasks found PENDING at start); an attempt that
// places none of its tasks puts the group off by the schedule penalty
// (InitialSchedulePenalty, doubling up to MaxSchedulePenalty), and one
// that places some makes it ready again at once.

// Scheduling and maintenance defaults of the two timing profiles: the dev
// profile's are Config's defaults.
const (
	AuroraMaxScheduleAttemptsPerSec  = 40.0
	DevMaxScheduleAttemptsPerSec     = 1000.0
	AuroraSchedulingMaxBatchSize     = 3
	DevSchedulingMaxBatchSize        = 100
	AuroraMaxTasksPerScheduleAttempt = 5
	DevMaxTasksPerScheduleAttempt    = 1000
	AuroraUnavailabilityThreshold    = match.DefaultUnavailabilityThreshold
	DevUnavailabilityThreshold       = time.Minute
)

// taskGroup is the PENDING tasks of one job and configuration.
type taskGroup struct {
	key      string
	readyAt  time.Time // the next attempt's earliest time
	failures int       // attempts in a row that placed nothing
	// attempted orders the last attempts of groups (0: none yet), so that
	// groups ready at the same time take turns.
	attempted int
	tasks     []*api.ScheduledTask
}

// scheduling is the scheduling loop's state. The caller holds s.mu.
type scheduling struct {
	groups   map[string]*taskGroup
	groupOf  map[string]string // PENDING task id → its group's key
	limiter  rateLimiter
	attempts int // attempts made, numbering them for taskGroup.attempted
	// Counters for /vars, under Aurora's names: tasks tried, and tried
	// but not placed.
	attemptsFired, attemptsNoMatch int
}

func newScheduling(perSec float64) scheduling {
	return scheduling{groups: map[string]*taskGroup{}, groupOf: map[string]string{}, limiter: rateLimiter{rate: perSec}}
}

// rateLimiter hands out rate permits a second, and holds up to a second's
// worth (at least one), starting full.
type rateLimiter struct {
	rate   float64
	tokens float64
	at     time.Time // of the last refill; zero: not used yet
}

func (l *rateLimiter) refill(now time.Time) {
	burst := max(1, l.rate)
	switch {
	case l.at.IsZero():
		l.tokens = burst
	case now.After(l.at):
		l.tokens = min(burst, l.tokens+now.Sub(l.at).Seconds()*l.rate)
	default:
		return
	}
	l.at = now
}

// take takes a permit if there is one.
func (l *rateLimiter) take(now time.Time) bool {
	l.refill(now)
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// next is when the next permit is there.
func (l *rateLimiter) next() time.Time {
	if l.tokens >= 1 || l.at.IsZero() {
		return l.at
	}
	return l.at.Add(time.Duration((1 - l.tokens) / l.rate * float64(time.Second)))
}

// groupKey is the key of a PENDING task's group: its job and a digest of
// its configuration. The caller holds s.mu.
func (s *Scheduler) groupKey(t *api.ScheduledTask) string {
	id := t.AssignedTask.TaskID
	if k, ok := s.sched.groupOf[id]; ok {
		return k
	}
	b, _ := json.Marshal(t.AssignedTask.Task)
	sum := sha256.Sum256(b)
	k := t.AssignedTask.Task.Job.String() + "@" + hex.EncodeToString(sum[:12])
	s.sched.groupOf[id] = k
	return k
}

// refreshGroups puts the PENDING tasks in their groups, instances in
// order, and forgets groups without any. A new group is ready after
// FirstScheduleDelay or, at startup, after the startup delay. The caller
// holds s.mu.
func (s *Scheduler) refreshGroups(now time.Time, startup bool) {
	sc := &s.sched
	for _, g := range sc.groups {
		g.tasks = g.tasks[:0]
	}
	pending := map[string]bool{}
	for id, t := range s.tasks {
		if t.Status != state.Pending.String() {
			continue
		}
		pending[id] = true
		k := s.groupKey(t)
		g := sc.groups[k]
		if g == nil {
			delay := s.cfg.Timings.FirstScheduleDelay
			if startup {
				delay = s.cfg.Timings.StartupScheduleDelay(s.machineTask(t), s.cfg.Rand())
			}
			g = &taskGroup{key: k, readyAt: now.Add(delay)}
			sc.groups[k] = g
		}
		g.tasks = append(g.tasks, t)
	}
	for k, g := range sc.groups {
		if len(g.tasks) == 0 {
			delete(sc.groups, k)
			continue
		}
		sort.Slice(g.tasks, func(i, j int) bool {
			a, b := g.tasks[i].AssignedTask, g.tasks[j].AssignedTask
			if a.InstanceID != b.InstanceID {
				return a.InstanceID < b.InstanceID
			}
			return a.TaskID < b.TaskID
		})
	}
	for id := range sc.groupOf {
		if !pending[id] {
			delete(sc.groupOf, id)
		}
	}
	for id := range s.vetoes {
		if !pending[id] {
			delete(s.vetoes, id)
		}
	}
}

// attempt is one scheduling attempt: some tasks of one group.
type attempt struct {
	group *taskGroup
	tasks []*api.ScheduledTask
}

// nextAttempts picks the batch of attempts to make now: the ready groups,
// longest ready first (then the longest untried), as many as the batch
// size and the rate limiter allow. The caller holds s.mu.
func (s *Scheduler) nextAttempts(now time.Time) []attempt {
	var ready []*taskGroup
	for _, g := range s.sched.groups {
		if !now.Before(g.readyAt) {
			ready = append(ready, g)
		}
	}
	sort.Slice(ready, func(i, j int) bool {
		a, b := ready[i], ready[j]
		switch {
		case !a.readyAt.Equal(b.readyAt):
			return a.readyAt.Before(b.readyAt)
		case a.attempted != b.attempted:
			return a.attempted < b.attempted
		}
		return a.key < b.key
	})
	var out []attempt
	for _, g := range ready {
		if len(out) == s.cfg.SchedulingMaxBatchSize || !s.sched.limiter.take(now) {
			break
		}
		s.sched.attempts++
		g.attempted = s.sched.attempts
		out = append(out, attempt{group: g, tasks: g.tasks[:min(len(g.tasks), s.cfg.MaxTasksPerScheduleAttempt)]})
	}
	return out
}

// nextRound is when a scheduling round may next have an attempt to make:
// when the first group is ready and a rate permit is there; zero when no
// task is PENDING. The caller holds s.mu.
func (s *Scheduler) nextRound() time.Time {
	var next time.Time
	for _, g := range s.sched.groups {
		if next.IsZero() || g.readyAt.Before(next) {
			next = g.readyAt
		}
	}
	if next.IsZero() {
		return next
	}
	if p := s.sched.limiter.next(); p.After(next) {
		next = p
	}
	return next
}

// scheduleLoop runs a scheduling round whenever woken or when the next
// round is due, and declines offers held too long.
func (s *Scheduler) scheduleLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.declineStale(ctx)
			continue
		case <-s.kick:
		case <-timer.C:
		}
		next := s.scheduleRound(ctx)
		if next.IsZero() {
			continue
		}
		if d := next.Sub(s.cfg.Now()); d > 0 {
			timer.Reset(d)
		} else {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

// scheduleRound makes one batch of scheduling attempts: the tasks matched
// to held offers become ASSIGNED in one stored batch, then each used offer
// is accepted with its launches. It returns when the next round is due
// (zero: when woken).
func (s *Scheduler) scheduleRound(ctx context.Context) time.Time {
	s.mu.Lock()
	if !s.registered {
		s.mu.Unlock()
		return time.Time{}
	}
	now := s.cfg.Now()
	s.refreshGroups(now, false)
	attempts := s.nextAttempts(now)
	if len(attempts) == 0 {
		next := s.nextRound()
		s.mu.Unlock()
		return next
	}
	var pending []match.Request
	refused := map[string][]match.Veto{}
	roles := map[string]error{}
	for _, a := range attempts {
		for _, t := range a.tasks {
			// A task stored while root tasks were allowed (or before they
			// were refused) stays PENDING, with the reason.
			if err := s.checkRoleCached(t.AssignedTask.Task.Job.Role, roles); err != nil {
				refused[t.AssignedTask.TaskID] = []match.Veto{{Reason: err.Error()}}
				continue
			}
			pending = append(pending, request(t))
		}
	}
	existing := map[match.JobKey][]match.Placed{}
	for _, t := range s.tasks {
		if st, _ := state.ParseStatus(t.Status); st.SlaveAssigned() {
			k := t.AssignedTask.Task.Job
			mk := match.JobKey{Role: k.Role, Environment: k.Environment, Name: k.Name}
			existing[mk] = append(existing[mk], match.Placed{Hostname: t.AssignedTask.SlaveHost, Attributes: s.hosts[t.AssignedTask.SlaveHost]})
		}
	}
	offers, byID := s.agentOffers()
	assignments, vetoes := s.assign(s.matcher(), offers, pending, existing)
	if vetoes == nil {
		vetoes = map[string][]match.Veto{}
	}
	for id, v := range refused {
		vetoes[id] = v
	}
	tx := s.begin()
	launches := map[string][]mesos.TaskInfo{} // offer id → tasks
	assigned := map[string]bool{}
	for _, a := range assignments {
		t := s.tasks[a.TaskID]
		t.AssignedTask.SlaveID, t.AssignedTask.SlaveHost, t.AssignedTask.AssignedPorts = a.AgentID, a.Hostname, a.Ports
		if tx.transition(a.TaskID, state.Assigned, "") != state.Success {
			continue
		}
		assigned[a.TaskID] = true
		s.releaseReservation(t.AssignedTask.Task.Job, t.AssignedTask.InstanceID)
		ti, err := s.taskInfo(t.AssignedTask, a.AgentID)
		if err != nil {
			s.log.Error("cannot build the launch", "task", a.TaskID, "err", err)
			continue
		}
		launches[a.OfferID] = append(launches[a.OfferID], ti)
	}
	if err := tx.commit(); err != nil {
		next := s.nextRound()
		s.mu.Unlock()
		return next
	}
	for _, a := range attempts {
		placed := 0
		for _, t := range a.tasks {
			id := t.AssignedTask.TaskID
			delete(s.vetoes, id)
			if assigned[id] {
				placed++
			} else if v, ok := vetoes[id]; ok {
				s.vetoes[id] = v
			}
		}
		s.sched.attemptsFired += len(a.tasks)
		s.sched.attemptsNoMatch += len(a.tasks) - placed
		if g := a.group; placed > 0 {
			g.failures, g.readyAt = 0, now
		} else {
			g.failures++
			g.readyAt = now.Add(s.cfg.Timings.SchedulePenalty(g.failures))
		}
	}
	for id := range launches {
		for _, o := range byID[id] {
			delete(s.offers, o.ID.Value)
		}
	}
	s.refreshGroups(now, false)
	next := s.nextRound()
	s.mu.Unlock()
	ids := make([]string, 0, len(launches))
	for id := range launches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		held := byID[id]
		offerIDs := make([]mesos.OfferID, len(held))
		for i, o := range held {
			offerIDs[i] = o.ID
		}
		s.log.Info("launching", "offer", id, "offers", len(held), "agent", held[0].Hostname, "tasks", len(launches[id]))
		s.send(ctx, calls.Accept(calls.OfferOperations{calls.OpLaunch(launches[id]...)}.WithOffers(offerIDs...)).
			With(calls.RefuseSeconds(0)))
	}
	s.sendKills(ctx, tx.kills)
	return next
}

// schedulingVars adds the scheduling counters to /vars. The caller holds
// s.mu.
func (s *Scheduler) schedulingVars(v map[string]any) {
	v["schedule_attempts_fired"] = s.sched.attemptsFired
	v["schedule_attempts_no_match"] = s.sched.attemptsNoMatch
	v["schedule_queue_size"] = len(s.sched.groups)
}
