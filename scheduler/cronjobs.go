package scheduler

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/cron"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
)

// Cron jobs (§8.4, Aurora's CronJobManager and AuroraCronJob). A cron job
// is a job configuration with a cronSchedule, stored with the other jobs
// (its template) and without tasks until it fires. Package cron's Trigger
// says when each is due, at the scheduler's clock in the cron timezone;
// each firing's slot is stored (storage.SetCronFired) before the firing
// acts, so a restarted scheduler neither fires that slot again nor catches
// up the slots it missed. A firing applies the job's collision policy
// (cron.Decide): with no active task it inserts instanceCount PENDING
// tasks; KILL_EXISTING kills the previous run's active tasks and launches
// once they are gone, polling with cron.KillWait's backoff; CANCEL_NEW
// skips the run. While a KILL_EXISTING launch waits, later firings of the
// job are ignored, as in Aurora.

// cronKillMessage is Aurora's audit message for a task a cron firing kills.
const cronKillMessage = "Killed by cronScheduler"

// cronState is the scheduler's cron side. Its maps and counters are
// guarded by s.mu; the Trigger locks itself.
type cronState struct {
	loc     *time.Location
	trigger *cron.Trigger
	kick    chan struct{} // wakes the cron loop (a schedule changed)
	tick    sync.Mutex    // one tick at a time: a tick returns with its firings done
	fired   map[api.JobKey]time.Time
	// waiting are the KILL_EXISTING launches waiting for the previous
	// run's tasks to end, by job: a generation, so that a deschedule or a
	// newer firing makes an older wait give up.
	waiting map[api.JobKey]int
	gen     int
	// runCtx is Run's context, for firings made outside the loop (tests).
	runCtx context.Context
	// Counters for /vars, with Aurora's names.
	triggers, launches, collisions, misfires, concurrent int
}

// initCron sets up the cron side from the store's snapshot: every stored
// cron job is scheduled from its last firing. The caller is New.
func (s *Scheduler) initCron(snap *storage.Snapshot) error {
	loc, err := cron.LoadLocation(s.cfg.CronTimezone)
	if err != nil {
		return err
	}
	s.cron = &cronState{loc: loc, trigger: cron.NewTrigger(loc, s.cfg.Now), kick: make(chan struct{}, 1),
		fired: map[api.JobKey]time.Time{}, waiting: map[api.JobKey]int{}}
	for key, at := range snap.CronFired {
		if k, ok := parseJobKey(key); ok {
			s.cron.fired[k] = at
		}
	}
	for k, j := range s.cronJobs {
		if j.CronSchedule == "" {
			continue
		}
		sched, err := cron.Parse(j.CronSchedule)
		if err != nil {
			// Stored by an older version with other rules: kept, not run.
			s.log.Error("stored cron job has an invalid schedule; not scheduled", "job", k, "err", err)
			continue
		}
		s.cron.trigger.Set(k.String(), sched, s.cron.fired[k])
	}
	return nil
}

// parseJobKey reads role/env/name.
func parseJobKey(s string) (api.JobKey, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return api.JobKey{}, false
	}
	k := api.JobKey{Role: parts[0], Environment: parts[1], Name: parts[2]}
	return k, k.Validate() == nil
}

func (c *cronState) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// cronLoop fires the cron jobs when they are due. It sleeps until the
// earliest next firing, at most a minute at a time (so a clock that is
// set or jumps is noticed), or until a schedule changes.
func (s *Scheduler) cronLoop(ctx context.Context) {
	s.mu.Lock()
	s.cron.runCtx = ctx
	s.mu.Unlock()
	// Reset drops any expiry not yet received (Go 1.23 timers).
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.cronTick(ctx)
		d := time.Minute
		if w, ok := s.cron.trigger.Wake(); ok {
			d = min(d, max(w.Sub(s.cfg.Now()), 0))
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-s.cron.kick:
		case <-timer.C:
		}
	}
}

// cronTick fires the jobs due now. Each slot is handed out once by the
// Trigger, so concurrent ticks fire nothing twice.
func (s *Scheduler) cronTick(ctx context.Context) {
	s.cron.tick.Lock()
	defer s.cron.tick.Unlock()
	for _, f := range s.cron.trigger.Due() {
		k, ok := parseJobKey(f.Key)
		if !ok {
			s.cron.trigger.Remove(f.Key)
			continue
		}
		s.fireCron(ctx, k, f.At)
	}
}

// fireCron runs a firing of the cron job k: a scheduled one for the slot
// at, or startCronJob's when at is zero. It reports an error only for
// startCronJob's sake (the job is not a cron job, or storage failed).
func (s *Scheduler) fireCron(ctx context.Context, k api.JobKey, at time.Time) error {
	c := s.cron
	s.mu.Lock()
	j := s.cronJobs[k]
	if j == nil || j.CronSchedule == "" {
		if !at.IsZero() {
			c.misfires++
			c.trigger.Remove(k.String())
			s.log.Warn("cron job fired but is no longer stored; descheduled", "job", k)
		}
		s.mu.Unlock()
		return invalid("%s", notCronMessage(k))
	}
	if !at.IsZero() {
		if err := s.store.Update(func(w *storage.Writer) error { return w.SetCronFired(k.String(), at) }); err != nil {
			s.mu.Unlock()
			s.log.Error("cron firing not stored; skipped", "job", k, "at", at, "err", err)
			return err
		}
		c.fired[k] = at
	}
	if _, ok := c.waiting[k]; ok {
		c.concurrent++
		s.mu.Unlock()
		s.log.Info("cron firing ignored: the previous firing still waits for its kills", "job", k)
		return nil
	}
	c.triggers++
	active := s.activeTasks(k, nil)
	policy := cron.Policy(j.CronCollisionPolicy)
	act := cron.Decide(policy, len(active))
	s.log.Info("cron job triggered", "job", k, "slot", at, "policy", policy.Effective(), "active", len(active), "action", act)
	tx := s.begin()
	var ids []string
	switch act {
	case cron.Launch:
		s.launchCron(tx, *j)
	case cron.Skip:
		c.collisions++
		s.mu.Unlock()
		return nil
	case cron.KillThenLaunch:
		c.collisions++
		for _, t := range active {
			tx.transition(t.AssignedTask.TaskID, state.Killing, cronKillMessage)
			ids = append(ids, t.AssignedTask.TaskID)
		}
	}
	err := tx.commit()
	if err == nil && act == cron.KillThenLaunch {
		c.gen++
		c.waiting[k] = c.gen
		gen := c.gen
		s.life.goFunc(func() { s.launchAfterKills(ctx, k, ids, gen) })
	}
	if err == nil && act == cron.Launch {
		c.launches++
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.sendKills(ctx, tx.kills)
	s.wake()
	return nil
}

// launchCron inserts the run's PENDING tasks, instances 0 to
// instanceCount-1 of the template. The caller holds s.mu.
func (s *Scheduler) launchCron(tx *txn, j api.JobConfiguration) {
	for i := 0; i < j.InstanceCount; i++ {
		s.addTask(tx, j.TaskConfig, i)
	}
	s.log.Info("cron job launched", "job", j.Key, "instances", j.InstanceCount)
}

// launchAfterKills waits, with cron.KillWait's backoff, until none of the
// killed tasks is active, then launches the job's current template. It
// gives up when the job is descheduled or the scheduler stops.
func (s *Scheduler) launchAfterKills(ctx context.Context, k api.JobKey, killed []string, gen int) {
	c := s.cron
	for n := 1; ; n++ {
		t := time.NewTimer(cron.KillWait(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.mu.Lock()
		if c.waiting[k] != gen {
			s.mu.Unlock()
			return
		}
		busy := false
		for _, id := range killed {
			if t := s.tasks[id]; t != nil {
				if st, _ := state.ParseStatus(t.Status); st.Active() {
					busy = true
					break
				}
			}
		}
		if busy {
			s.mu.Unlock()
			s.log.Info("cron launch waits for the previous run's tasks to end", "job", k, "check", n)
			continue
		}
		delete(c.waiting, k)
		j := s.cronJobs[k]
		if j == nil || j.CronSchedule == "" {
			s.mu.Unlock()
			return
		}
		tx := s.begin()
		s.launchCron(tx, *j)
		err := tx.commit()
		if err == nil {
			c.launches++
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Error("cron launch not stored", "job", k, "err", err)
			return
		}
		s.wake()
		return
	}
}

// notCronMessage is Aurora's answer about a job that is not a cron job.
func notCronMessage(k api.JobKey) string { return fmt.Sprintf("Job %s is not scheduled with cron", k) }

// validateCron checks a cron job given to scheduleCronJob or
// replaceCronTemplate and returns its parsed schedule.
func (s *Scheduler) validateCron(j *api.JobConfiguration) (cron.Schedule, error) {
	if err := s.validateJob(j); err != nil {
		return cron.Schedule{}, err
	}
	if j.CronSchedule == "" {
		return cron.Schedule{}, invalid("Job %s has no cron schedule", j.Key)
	}
	if j.TaskConfig.IsService {
		return cron.Schedule{}, invalid("A service task may not be run on a cron schedule: %s", j.Key)
	}
	sched, err := cron.Parse(j.CronSchedule)
	if err != nil {
		return cron.Schedule{}, invalid("%v", err)
	}
	if err := cron.CheckPolicy(cron.Policy(j.CronCollisionPolicy)); err != nil {
		return cron.Schedule{}, invalid("%v", err)
	}
	return sched, nil
}

// checkCronQuota checks a production template against the role's quota:
// the role's production consumption without this job's active tasks, plus
// instanceCount tasks of the template. The caller holds s.mu.
func (s *Scheduler) checkCronQuota(j api.JobConfiguration) error {
	tc := j.TaskConfig
	if !tc.Production || dedicated(tc) {
		return nil
	}
	info := s.quotaInfo(j.Key.Role)
	use := info.ProdSharedConsumption
	for _, t := range s.activeTasks(j.Key, nil) {
		if c := t.AssignedTask.Task; c.Production && !dedicated(c) {
			a := taskAggregate(c, 1)
			use = api.ResourceAggregate{NumCpus: use.NumCpus - a.NumCpus, RAMMb: use.RAMMb - a.RAMMb, DiskMb: use.DiskMb - a.DiskMb}
		}
	}
	if d := quotaShortfall(info.Quota, use.Add(taskAggregate(tc, j.InstanceCount))); d != "" {
		return invalid("Insufficient resource quota: %s", d)
	}
	return nil
}

// ScheduleCronJob is scheduleCronJob (replace: replaceCronTemplate, which
// needs the cron job to exist): it stores the template, durably, and
// schedules it. No task is created until the job fires.
func (s *Scheduler) ScheduleCronJob(ctx context.Context, j api.JobConfiguration, replace bool) error {
	sched, err := s.validateCron(&j)
	if err != nil {
		return err
	}
	k := j.Key
	s.mu.Lock()
	defer s.mu.Unlock()
	method := "scheduleCronJob"
	if replace {
		method = "replaceCronTemplate"
	}
	if err := s.checkNotUpdating(k, method); err != nil {
		return err
	}
	old := s.cronJobs[k]
	switch {
	case replace && old == nil:
		return invalid("No cron template found for the given key: %s", k)
	case old == nil && s.jobExists(k):
		// A job with active tasks; one whose tasks have all ended no
		// longer exists and may become a cron job (Aurora 0.11).
		return invalid("Job %s already exists and is not a cron job.", k)
	}
	if err := s.checkFits(j.TaskConfig); err != nil {
		return err
	}
	if j.InstanceCount > s.cfg.MaxTasksPerJob {
		return invalid("Instance count must be between 1 and %d inclusive.", s.cfg.MaxTasksPerJob)
	}
	if err := s.checkCronQuota(j); err != nil {
		return err
	}
	tx := s.begin()
	tx.jobs = append(tx.jobs, j)
	s.cronJobs[k] = &j
	if err := tx.commit(); err != nil {
		return err
	}
	next := s.cron.trigger.Set(k.String(), sched, s.cron.fired[k])
	s.log.Info("cron job scheduled", "job", k, "schedule", j.CronSchedule, "replaced", old != nil, "next", next)
	s.cron.wake()
	return nil
}

// DescheduleCronJob is descheduleCronJob: the template and its schedule
// are removed; tasks of a run in progress are left alone, as in Aurora.
// It reports false (and changes nothing) when k is not a cron job.
func (s *Scheduler) DescheduleCronJob(ctx context.Context, k api.JobKey) (bool, error) {
	if err := k.Validate(); err != nil {
		return false, invalid("%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.cronJobs[k]
	if j == nil || j.CronSchedule == "" {
		return false, nil
	}
	if err := s.store.Update(func(w *storage.Writer) error {
		if err := w.DeleteJob(k); err != nil {
			return err
		}
		return w.SetCronFired(k.String(), time.Time{})
	}); err != nil {
		return false, err
	}
	delete(s.cronJobs, k)
	delete(s.cron.fired, k)
	delete(s.cron.waiting, k)
	s.cron.trigger.Remove(k.String())
	s.log.Info("cron job descheduled", "job", k)
	s.cron.wake()
	return true, nil
}

// StartCronJob is startCronJob: the job fires now, with its collision
// policy, outside its schedule (which is not moved).
func (s *Scheduler) StartCronJob(ctx context.Context, k api.JobKey) error {
	if err := k.Validate(); err != nil {
		return invalid("%v", err)
	}
	if err := s.checkRole(k.Role); err != nil {
		return err
	}
	return s.fireCron(ctx, k, time.Time{})
}

// CronJobs lists the scheduled cron jobs, by key, for /cron and the UI.
func (s *Scheduler) CronJobs() []api.CronJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.CronJob{}
	for _, j := range s.cronJobs {
		if j.CronSchedule == "" {
			continue
		}
		cj := api.CronJob{Job: j.Key, CronSchedule: j.CronSchedule, InstanceCount: j.InstanceCount,
			CronCollisionPolicy: string(cron.Policy(j.CronCollisionPolicy).Effective()),
			ActiveTasks:         len(s.activeTasks(j.Key, nil))}
		if next, ok := s.cron.trigger.NextRun(j.Key.String()); ok {
			cj.NextRunMs = next.UnixMilli()
		}
		if at, ok := s.cron.fired[j.Key]; ok {
			cj.LastFiredMs = at.UnixMilli()
		}
		_, cj.LaunchPending = s.cron.waiting[j.Key]
		out = append(out, cj)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Job.String() < out[b].Job.String() })
	return out
}

// CronTimezone names the zone cron schedules are read in.
func (s *Scheduler) CronTimezone() string { return s.cron.loc.String() }

// nextCronRun is a cron job's next firing in ms, for getJobSummary.
func (s *Scheduler) nextCronRun(j api.JobConfiguration) *int64 {
	if j.CronSchedule == "" {
		return nil
	}
	next, ok := s.cron.trigger.NextRun(j.Key.String())
	if !ok {
		return nil
	}
	ms := next.UnixMilli()
	return &ms
}

// cronVars adds the cron counters to /vars. The caller holds s.mu.
func (s *Scheduler) cronVars(v map[string]any) {
	c := s.cron
	n := 0
	for _, j := range s.cronJobs {
		if j.CronSchedule != "" {
			n++
		}
	}
	v["cron_jobs"] = n
	v["cron_job_triggers"], v["cron_job_launches"], v["cron_job_collisions"] = c.triggers, c.launches, c.collisions
	v["cron_job_misfires"], v["cron_job_concurrent_runs"] = c.misfires, c.concurrent
	v["cron_jobs_awaiting_kills"] = len(c.waiting)
}

// serveCron is /cron: Aurora's {"scheduled": {"role/env/job": crontab}},
// plus the zone and each job's next run and last firing.
func (s *Scheduler) serveCron(w http.ResponseWriter, r *http.Request) {
	jobs := s.CronJobs()
	out := struct {
		Scheduled map[string]string `json:"scheduled"`
		Timezone  string            `json:"timezone"`
		Jobs      []api.CronJob     `json:"jobs"`
	}{Scheduled: map[string]string{}, Timezone: s.CronTimezone(), Jobs: jobs}
	for _, j := range jobs {
		out.Scheduled[j.Job.String()] = j.CronSchedule
	}
	writeJSON(w, out)
}

// cronCall answers the cron RPCs; false for any other method.
func (s *Scheduler) cronCall(ctx context.Context, method string, body []byte) (api.Response, bool) {
	switch method {
	case "scheduleCronJob", "replaceCronTemplate", "descheduleCronJob", "startCronJob":
	default:
		return api.Response{}, false
	}
	var p struct {
		Description *api.JobConfiguration `json:"description"` // scheduleCronJob
		Config      *api.JobConfiguration `json:"config"`      // replaceCronTemplate
		Job         *api.JobKey           `json:"job"`         // descheduleCronJob, startCronJob
	}
	if err := decodeParams(method, body, &p); err != nil {
		return s.fail(api.InvalidRequest, "%v", err), true
	}
	switch method {
	case "scheduleCronJob", "replaceCronTemplate":
		j, name := p.Description, "description"
		if method == "replaceCronTemplate" {
			j, name = p.Config, "config"
		}
		if j == nil {
			return s.fail(api.InvalidRequest, "%s needs %s (a JobConfiguration).", method, name), true
		}
		if err := s.ScheduleCronJob(ctx, *j, method == "replaceCronTemplate"); err != nil {
			return s.errResponse(err), true
		}
		return s.ok(nil), true
	}
	if p.Job == nil {
		return s.fail(api.InvalidRequest, "%s needs job (a JobKey).", method), true
	}
	if method == "startCronJob" {
		if err := s.StartCronJob(ctx, *p.Job); err != nil {
			return s.errResponse(err), true
		}
		return s.ok(nil), true
	}
	found, err := s.DescheduleCronJob(ctx, *p.Job)
	if err != nil {
		return s.errResponse(err), true
	}
	if !found {
		return s.ok(nil, notCronMessage(*p.Job)), true
	}
	return s.ok(nil), true
}
