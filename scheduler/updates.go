package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	"github.com/aurorabox/aurorabox/scheduler/update"
)

// Scheduler-driven job updates (§7): the RPCs, the controller loop that
// drives package update's engine from task changes and timers, and their
// storage. An update's engine state is stored with every change, in the
// same transaction as the task changes it makes, so an update survives a
// kill -9 of the scheduler and carries on where it was.

// jobUpdate is one update in memory.
type jobUpdate struct {
	rec api.JobUpdate
	ctl *update.Update
	// configs maps the engine's configuration ids to the configurations
	// (the instructions' initial and desired states).
	configs        map[string]api.TaskConfig
	events         []api.JobUpdateEvent
	instanceEvents []api.JobInstanceUpdateEvent
	// stored and storedInstance are how many events are in the store.
	stored, storedInstance int
	// broken is set when the stored engine state could not be read: the
	// update is ended in ERROR at the next evaluation.
	broken bool
}

func (u *jobUpdate) key() api.JobUpdateKey { return u.rec.Summary.Key }

// summary is the stored summary with the engine's status and the latest
// event time.
func (u *jobUpdate) summary() api.JobUpdateSummary {
	sum := u.rec.Summary
	sum.State.Status = u.ctl.Status.String()
	last := sum.State.CreatedTimestampMs
	if n := len(u.events); n > 0 {
		last = max(last, u.events[n-1].TimestampMs)
	}
	if n := len(u.instanceEvents); n > 0 {
		last = max(last, u.instanceEvents[n-1].TimestampMs)
	}
	sum.State.LastModifiedTimestampMs = last
	return sum
}

// details is getJobUpdateDetails' view of the update.
func (u *jobUpdate) details() api.JobUpdateDetails {
	rec := u.rec
	rec.Summary = u.summary()
	return api.JobUpdateDetails{Update: rec,
		UpdateEvents:   append([]api.JobUpdateEvent{}, u.events...),
		InstanceEvents: append([]api.JobInstanceUpdateEvent{}, u.instanceEvents...)}
}

// updateState is what is stored of the engine.
type updateState struct {
	Controller *update.Update `json:"controller"`
}

// configID names a configuration for the engine: a hash of its JSON, as
// getConfigSummary tells configurations apart.
func configID(tc api.TaskConfig) string {
	b, _ := json.Marshal(tc)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// updatingError is a request refused because the job is being updated:
// the API answers JOB_UPDATING_ERROR.
type updatingError struct{ msg string }

func (e *updatingError) Error() string { return e.msg }

// checkNotUpdating refuses to change a job with an active update. The
// caller holds s.mu.
func (s *Scheduler) checkNotUpdating(k api.JobKey, what string) error {
	if u := s.activeUpdate(k); u != nil {
		return &updatingError{fmt.Sprintf("%s is not allowed: job %s is being updated (update %s, %s); "+
			"pause, abort or wait for the update first.", what, k, u.key().ID, u.ctl.Status)}
	}
	return nil
}

// activeUpdate is the job's active update, if any. The caller holds s.mu.
func (s *Scheduler) activeUpdate(k api.JobKey) *jobUpdate {
	for _, u := range s.updates {
		if u.key().Job == k && u.ctl.Status.Active() {
			return u
		}
	}
	return nil
}

// loadUpdates makes the stored updates the in-memory ones.
func (s *Scheduler) loadUpdates(stored []storage.StoredUpdate) {
	s.updates = map[string]*jobUpdate{}
	for _, su := range stored {
		u := &jobUpdate{rec: su.Update, events: su.Events, instanceEvents: su.InstanceEvents,
			stored: len(su.Events), storedInstance: len(su.InstanceEvents), configs: map[string]api.TaskConfig{}}
		for _, c := range su.Update.Instructions.InitialState {
			u.configs[configID(c.Task)] = c.Task
		}
		if d := su.Update.Instructions.DesiredState; d != nil {
			u.configs[configID(d.Task)] = d.Task
		}
		var st updateState
		err := json.Unmarshal(su.State, &st)
		if err == nil && st.Controller == nil {
			err = errors.New("no engine state")
		}
		if err == nil {
			for _, in := range st.Controller.Instances {
				for _, c := range []string{in.Initial, in.Desired} {
					if _, ok := u.configs[c]; c != "" && !ok {
						err = fmt.Errorf("instance %d: configuration %s is not in the instructions", in.ID, c)
					}
				}
			}
		}
		if err != nil {
			s.log.Error("stored job update unreadable", "update", su.Update.Summary.Key.ID, "err", err)
			status, _ := update.ParseStatus(su.Update.Summary.State.Status)
			st.Controller = &update.Update{Status: status}
			u.broken = true
		}
		u.ctl = st.Controller
		s.updates[u.key().ID] = u
	}
}

// saveUpdate stores the update and its new events with the batch. The
// caller holds s.mu.
func (tx *txn) saveUpdate(u *jobUpdate) {
	if tx.updates == nil {
		tx.updates = map[string]*jobUpdate{}
	}
	tx.updates[u.key().ID] = u
}

// writeUpdates is commit's part for updates.
func (tx *txn) writeUpdates(w *storage.Writer) error {
	for _, id := range tx.pruned {
		if err := w.DeleteUpdate(id); err != nil {
			return err
		}
	}
	for _, u := range tx.updates {
		state, err := json.Marshal(updateState{Controller: u.ctl})
		if err != nil {
			return err
		}
		rec := u.rec
		rec.Summary = u.summary()
		if err := w.SaveUpdate(storage.UpdateRecord{Update: rec, State: state}); err != nil {
			return err
		}
		for i := u.stored; i < len(u.events); i++ {
			if err := w.AddUpdateEvent(u.key().ID, i, u.events[i]); err != nil {
				return err
			}
		}
		for i := u.storedInstance; i < len(u.instanceEvents); i++ {
			if err := w.AddInstanceEvent(u.key().ID, i, u.instanceEvents[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// updatesWritten notes that the batch's events are in the store.
func (tx *txn) updatesWritten() {
	for _, u := range tx.updates {
		u.stored, u.storedInstance = len(u.events), len(u.instanceEvents)
	}
}

// record adds an engine result's events to the update.
func (tx *txn) record(u *jobUpdate, r update.Result) {
	for _, e := range r.Events {
		u.events = append(u.events, api.JobUpdateEvent{Status: e.Status.String(), TimestampMs: nowMS(e.Time), User: e.User, Message: e.Message})
	}
	for _, e := range r.InstanceEvents {
		u.instanceEvents = append(u.instanceEvents, api.JobInstanceUpdateEvent{InstanceID: e.Instance, TimestampMs: nowMS(e.Time), Action: e.Action.String(), Message: e.Message})
	}
	tx.saveUpdate(u)
}

// updateKillMessage is the task event of a task an update kills.
const updateKillMessage = "Killed for job update."

// drive applies an engine result to the batch: records its events, makes
// its task changes, and evaluates again while the engine asks to. When
// the update ends it settles the job. It returns when the engine next
// wants a look (zero: only on a change). The caller holds s.mu.
func (s *Scheduler) drive(tx *txn, u *jobUpdate, r update.Result) time.Time {
	k := u.key().Job
	for n := 0; ; n++ {
		tx.record(u, r)
		for _, c := range r.Commands {
			switch c.Kind {
			case update.AddTask:
				tc, ok := u.configs[c.Config]
				if !ok {
					// Cannot happen with a readable store; end the update
					// rather than leave the instance waiting forever.
					s.log.Error("job update adds an unknown configuration", "update", u.key().ID, "config", c.Config)
					if fr, err := u.ctl.Fail(msTime(tx.now), "The update lost its configuration for instance "+fmt.Sprint(c.Instance)+"."); err == nil {
						tx.record(u, fr)
					}
					continue
				}
				s.addTask(tx, tc, c.Instance)
			case update.KillTask:
				t := s.tasks[c.TaskID]
				if t == nil {
					continue
				}
				if c.Reserve && t.AssignedTask.SlaveID != "" {
					s.reserve(t.AssignedTask.SlaveID, k, c.Instance, tx.now)
				}
				tx.transition(c.TaskID, state.Killing, updateKillMessage)
			}
		}
		if !r.Again || n >= 20 {
			break
		}
		r = u.ctl.Evaluate(msTime(tx.now), s.updateView(u))
	}
	if u.ctl.Status.Terminal() {
		s.settleJob(tx, u)
		return time.Time{}
	}
	return r.Wake
}

// msTime is t at the precision of task event times (ms), so that the
// engine compares like with like.
func msTime(t time.Time) time.Time { return fromMS(nowMS(t)) }

// updateView is what the engine sees of the update's job: each
// instance's tasks. The caller holds s.mu.
func (s *Scheduler) updateView(u *jobUpdate) update.View {
	k := u.key().Job
	want := map[int]bool{}
	for _, in := range u.ctl.Instances {
		want[in.ID] = true
	}
	v := update.View{Tasks: map[int][]update.Task{}, Fits: func(from, to string) bool {
		a, okA := u.configs[from]
		b, okB := u.configs[to]
		return okA && okB && fits(a, b)
	}}
	if u.rec.Instructions.Settings.SlaAware {
		v.MayKill = s.slaAwareKill(u)
	}
	var ts []*api.ScheduledTask
	for _, t := range s.tasks {
		if t.AssignedTask.Task.Job == k && want[t.AssignedTask.InstanceID] {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].AssignedTask.TaskID < ts[j].AssignedTask.TaskID })
	for _, t := range ts {
		st, _ := state.ParseStatus(t.Status)
		ut := update.Task{ID: t.AssignedTask.TaskID, Config: configID(t.AssignedTask.Task), Status: st}
		for _, e := range t.TaskEvents {
			ut.Since = fromMS(e.Timestamp)
			switch e.Status {
			case state.Killing.String(), state.Restarting.String(), state.Draining.String(), state.Preempting.String():
				ut.EndRequested = true
			}
		}
		v.Tasks[t.AssignedTask.InstanceID] = append(v.Tasks[t.AssignedTask.InstanceID], ut)
	}
	return v
}

// slaAwareKill is an SLA-aware update's check of a kill (Aurora's
// SlaKillController): a task not on an agent goes at once; others when the
// update's SLA policy (the desired configuration's, else the task's own)
// allows, as for SLA drains; otherwise the update looks again after
// Config.SlaAwareKillRetry. The caller holds s.mu, and so does the engine
// when it calls the check.
func (s *Scheduler) slaAwareKill(u *jobUpdate) func(int, update.Task) (bool, time.Time) {
	var def api.SlaPolicy
	if d := u.rec.Instructions.DesiredState; d != nil {
		def = taskSlaPolicy(&api.ScheduledTask{AssignedTask: api.AssignedTask{Task: d.Task}}, api.SlaPolicy{})
	}
	return func(_ int, ut update.Task) (bool, time.Time) {
		t := s.tasks[ut.ID]
		if t == nil || !ut.Status.SlaveAssigned() {
			return true, time.Time{}
		}
		p := def
		if p.Set() != 1 {
			p = taskSlaPolicy(t, api.SlaPolicy{})
		}
		now := s.cfg.Now()
		switch {
		case p.Set() != 1:
			return true, time.Time{}
		case p.CoordinatorSlaPolicy != nil:
			return s.coordinatorAllows(u, t, *p.CoordinatorSlaPolicy), now.Add(s.cfg.SlaAwareKillRetry)
		}
		if s.slaAllows(t, p, now) {
			return true, time.Time{}
		}
		return false, now.Add(s.cfg.SlaAwareKillRetry)
	}
}

// fits reports whether a task of b fits where one of a runs: no more
// resources, no more ports, the same constraints (Aurora's condition for
// KILL_TASK_AND_RESERVE).
func fits(a, b api.TaskConfig) bool {
	ca, ra, da, pa := a.Scalars()
	cb, rb, db, pb := b.Scalars()
	if cb > ca+1e-9 || rb > ra || db > da || len(pb) > len(pa) {
		return false
	}
	x, _ := json.Marshal(a.Constraints)
	y, _ := json.Marshal(b.Constraints)
	return string(x) == string(y)
}

// settleJob tidies up after an update that has ended: the reservations
// made for it are released and the job's oldest ended updates forgotten.
// The job needs no stored configuration: it is its tasks (see Jobs). The
// caller holds s.mu.
func (s *Scheduler) settleJob(tx *txn, u *jobUpdate) {
	k := u.key().Job
	s.releaseReservations(k)
	s.pruneUpdates(tx, k)
}

// pruneUpdates forgets the job's oldest ended updates beyond
// Config.UpdateHistoryPerJob (Aurora's
// -job_update_history_per_job_threshold). The caller holds s.mu.
func (s *Scheduler) pruneUpdates(tx *txn, k api.JobKey) {
	var ended []*jobUpdate
	for _, u := range s.updates {
		if u.key().Job == k && u.ctl.Status.Terminal() {
			ended = append(ended, u)
		}
	}
	if len(ended) <= s.cfg.UpdateHistoryPerJob {
		return
	}
	sort.Slice(ended, func(i, j int) bool {
		a, b := ended[i].rec.Summary.State.CreatedTimestampMs, ended[j].rec.Summary.State.CreatedTimestampMs
		if a != b {
			return a > b
		}
		return ended[i].key().ID < ended[j].key().ID
	})
	for _, u := range ended[s.cfg.UpdateHistoryPerJob:] {
		delete(s.updates, u.key().ID)
		delete(tx.updates, u.key().ID)
		tx.pruned = append(tx.pruned, u.key().ID)
	}
}

// evaluateUpdates moves every rolling update on, in one stored batch per
// update, and returns when the next one wants a look (zero: none does).
func (s *Scheduler) evaluateUpdates(ctx context.Context) time.Time {
	s.mu.Lock()
	var wake time.Time
	var kills []string
	changed := false
	for _, id := range sortedKeys(s.updates) {
		u := s.updates[id]
		// An update ending earlier in this loop may have pruned older ones.
		if u == nil || !u.ctl.Status.Active() {
			continue
		}
		tx := s.begin()
		var r update.Result
		if u.broken {
			r, _ = u.ctl.Fail(tx.now, "The stored update could not be read.")
		} else {
			r = u.ctl.Evaluate(msTime(tx.now), s.updateView(u))
		}
		if len(r.Events)+len(r.InstanceEvents)+len(r.Commands) == 0 && !r.Again {
			if !r.Wake.IsZero() && (wake.IsZero() || r.Wake.Before(wake)) {
				wake = r.Wake
			}
			continue
		}
		w := s.drive(tx, u, r)
		if err := tx.commit(); err != nil {
			s.log.Error("job update not stored", "update", id, "err", err)
			break // reloaded: the next round starts from the store
		}
		changed = true
		kills = append(kills, tx.kills...)
		if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
			wake = w
		}
	}
	s.mu.Unlock()
	s.sendKills(ctx, kills)
	if changed {
		s.wake()
	}
	return wake
}

// updateLoop evaluates the updates whenever a task changes (wake), an
// update is changed by a request, or an engine asked for a look.
func (s *Scheduler) updateLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.updateKick:
		case <-timer.C:
		}
		next := s.evaluateUpdates(ctx)
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(next.Sub(s.cfg.Now()), 0))
		}
	}
}

// kickUpdates asks the update loop for a round.
func (s *Scheduler) kickUpdates() {
	select {
	case s.updateKick <- struct{}{}:
	default:
	}
}

// settings checks an update request's settings (§7.2) and makes the
// engine's.
func (s *Scheduler) updateSettings(req api.JobUpdateRequest) (update.Settings, error) {
	in := req.Settings
	var st update.Strategy
	if us := in.UpdateStrategy; us != nil {
		n := 0
		if us.QueueStrategy != nil {
			n++
			st = update.Strategy{Kind: update.Queue, GroupSizes: []int{us.QueueStrategy.GroupSize}}
		}
		if us.BatchStrategy != nil {
			n++
			st = update.Strategy{Kind: update.Batch, GroupSizes: []int{us.BatchStrategy.GroupSize}, Autopause: us.BatchStrategy.AutopauseAfterBatch}
		}
		if us.VarBatchStrategy != nil {
			n++
			st = update.Strategy{Kind: update.VariableBatch, GroupSizes: append([]int(nil), us.VarBatchStrategy.GroupSizes...),
				Autopause: us.VarBatchStrategy.AutopauseAfterBatch}
		}
		if n != 1 {
			return update.Settings{}, invalid("Unknown update strategy: set exactly one of queueStrategy, batchStrategy and varBatchStrategy.")
		}
	} else {
		st = update.Strategy{Kind: update.Queue, GroupSizes: []int{in.UpdateGroupSize}}
		if in.WaitForBatchCompletion {
			st.Kind = update.Batch
		}
	}
	if err := st.Validate(); err != nil {
		return update.Settings{}, invalid("%s", err.Error())
	}
	switch {
	case in.MaxPerInstanceFailures < 0:
		return update.Settings{}, invalid("Invalid maxPerInstanceFailures %d: must not be negative.", in.MaxPerInstanceFailures)
	case in.MaxFailedInstances < 0:
		return update.Settings{}, invalid("Invalid maxFailedInstances %d: must not be negative.", in.MaxFailedInstances)
	case int64(in.MaxPerInstanceFailures)*int64(req.InstanceCount) > int64(s.cfg.MaxUpdateInstanceFailures):
		return update.Settings{}, invalid("Your update allows too many failures: maxPerInstanceFailures (%d) times the instance count (%d) must not exceed %d.",
			in.MaxPerInstanceFailures, req.InstanceCount, s.cfg.MaxUpdateInstanceFailures)
	case in.MinWaitInInstanceRunningMs < 0:
		return update.Settings{}, invalid("Invalid minWaitInInstanceRunningMs %d: must not be negative.", in.MinWaitInInstanceRunningMs)
	case in.BlockIfNoPulsesAfterMs < 0:
		return update.Settings{}, invalid("Invalid blockIfNoPulsesAfterMs %d: must be positive.", in.BlockIfNoPulsesAfterMs)
	case in.SlaAware && len(req.TaskConfig.SlaPolicy) == 0:
		return update.Settings{}, invalid("slaAware is true, but no task slaPolicy is specified.")
	}
	for _, r := range in.UpdateOnlyTheseInstances {
		if r.First < 0 || r.Last < r.First {
			return update.Settings{}, invalid("Invalid instance range %d-%d in updateOnlyTheseInstances.", r.First, r.Last)
		}
	}
	return update.Settings{
		Strategy: st, MaxPerInstanceFailures: in.MaxPerInstanceFailures, MaxFailedInstances: in.MaxFailedInstances,
		MinWaitInRunning: time.Duration(in.MinWaitInInstanceRunningMs) * time.Millisecond, RollbackOnFailure: in.RollbackOnFailure,
		BlockIfNoPulsesAfter: time.Duration(in.BlockIfNoPulsesAfterMs) * time.Millisecond,
	}, nil
}

// maxScopeInstances bounds updateOnlyTheseInstances when expanded.
const maxScopeInstances = 100000

// plan is what an update request would do to its job.
type plan struct {
	tc       api.TaskConfig
	desired  string
	current  map[int]string // instance → configuration id of its active task
	configs  map[string]api.TaskConfig
	diff     update.Diff
	settings update.Settings
}

// planUpdate validates an update request against the job (§7.2) and
// diffs it. The caller holds s.mu.
func (s *Scheduler) planUpdate(req api.JobUpdateRequest) (*plan, error) {
	j := api.JobConfiguration{Key: req.TaskConfig.Job, Owner: req.TaskConfig.Owner, TaskConfig: req.TaskConfig, InstanceCount: req.InstanceCount}
	if err := s.validateJob(&j); err != nil {
		return nil, err
	}
	tc := j.TaskConfig
	if !tc.IsService {
		return nil, invalid("Updates are not supported for non-service tasks.")
	}
	settings, err := s.updateSettings(req)
	if err != nil {
		return nil, err
	}
	if s.cronJobs[j.Key] != nil {
		return nil, invalid("Cron jobs may only be updated by calling replaceCronTemplate.")
	}
	if err := s.checkFits(tc); err != nil {
		return nil, err
	}
	if req.InstanceCount > s.cfg.MaxTasksPerJob {
		return nil, invalid("Instance count must be between 1 and %d inclusive.", s.cfg.MaxTasksPerJob)
	}
	p := &plan{tc: tc, desired: configID(tc), current: map[int]string{}, configs: map[string]api.TaskConfig{}, settings: settings}
	p.configs[p.desired] = tc
	for _, t := range s.activeTasks(j.Key, nil) {
		id := configID(t.AssignedTask.Task)
		p.current[t.AssignedTask.InstanceID] = id
		p.configs[id] = t.AssignedTask.Task
	}
	var scope []int
	for _, r := range req.Settings.UpdateOnlyTheseInstances {
		if len(scope)+r.Last-r.First+1 > maxScopeInstances {
			return nil, invalid("updateOnlyTheseInstances names more than %d instances.", maxScopeInstances)
		}
		for i := r.First; i <= r.Last; i++ {
			scope = append(scope, i)
		}
	}
	p.diff = update.Compute(p.current, p.desired, req.InstanceCount, scope)
	if len(p.diff.OutOfScope) > 0 {
		return nil, invalid("The update request attempted to update specified instances that do not exist: %v", p.diff.OutOfScope)
	}
	return p, nil
}

// checkUpdateQuota refuses an update whose production tasks would exceed
// the role's quota: while it runs an instance may hold either its old or
// its new task, so each touched instance counts with the larger of the
// two (Aurora's QuotaManager counts an update the same way). The caller
// holds s.mu.
func (s *Scheduler) checkUpdateQuota(p *plan) error {
	prodShared := func(tc api.TaskConfig) bool { return tc.Production && !dedicated(tc) }
	if !prodShared(p.tc) {
		return nil
	}
	info := s.quotaInfo(p.tc.Job.Role)
	want := info.ProdSharedConsumption
	newRes := taskAggregate(p.tc, 1)
	touched := append(append(append([]int(nil), p.diff.Add...), p.diff.Update...), p.diff.Remove...)
	for _, i := range touched {
		var old api.ResourceAggregate
		if id, ok := p.current[i]; ok && prodShared(p.configs[id]) {
			old = taskAggregate(p.configs[id], 1)
			want = want.Add(api.ResourceAggregate{NumCpus: -old.NumCpus, RAMMb: -old.RAMMb, DiskMb: -old.DiskMb})
		}
		if slices.Contains(p.diff.Remove, i) {
			want = want.Add(old)
			continue
		}
		want = want.Add(api.ResourceAggregate{NumCpus: max(old.NumCpus, newRes.NumCpus), RAMMb: max(old.RAMMb, newRes.RAMMb), DiskMb: max(old.DiskMb, newRes.DiskMb)})
	}
	if d := quotaShortfall(info.Quota, want); d != "" {
		return invalid("Insufficient resource quota: %s", d)
	}
	return nil
}

// unchangedMessage is Aurora's answer to an update that changes nothing.
const unchangedMessage = "Job is unchanged by proposed update."

// errActiveUpdate carries the summary of the update in progress with the
// refusal of a second one (the client recognises its own retried request
// by the summary's metadata).
type errActiveUpdate struct {
	summary api.JobUpdateSummary
}

func (e *errActiveUpdate) Error() string {
	var names []string
	for _, st := range update.Statuses() {
		if st.Active() {
			names = append(names, st.String())
		}
	}
	return fmt.Sprintf("An active update already exists for this job, please terminate it before starting another. "+
		"Active updates are those in states %s.", strings.Join(names, ", "))
}

// StartJobUpdate is startJobUpdate. It returns the new update's summary,
// or none (and the message "Job is unchanged by proposed update.") when
// the request changes nothing.
func (s *Scheduler) StartJobUpdate(ctx context.Context, req api.JobUpdateRequest, message, user string) (*api.JobUpdateSummary, error) {
	s.mu.Lock()
	p, err := s.planUpdate(req)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	k := p.tc.Job
	if u := s.activeUpdate(k); u != nil {
		s.mu.Unlock()
		return nil, &errActiveUpdate{u.summary()}
	}
	if p.diff.Empty() {
		s.mu.Unlock()
		return nil, nil
	}
	if err := s.checkUpdateQuota(p); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	tx := s.begin()
	now := msTime(tx.now)
	key := api.JobUpdateKey{Job: k, ID: newUUID()}
	// The instructions: the in-scope instances as they are, by
	// configuration, and as they will be.
	byConfig := map[string][]int{}
	for _, l := range [][]int{p.diff.Update, p.diff.Remove, p.diff.Unchanged} {
		for _, i := range l {
			byConfig[p.current[i]] = append(byConfig[p.current[i]], i)
		}
	}
	instr := api.JobUpdateInstructions{InitialState: []api.InstanceTaskConfig{}, Settings: req.Settings}
	for _, id := range sortedKeys(byConfig) {
		instr.InitialState = append(instr.InitialState, api.InstanceTaskConfig{Task: p.configs[id], Instances: toRanges(byConfig[id])})
	}
	sort.Slice(instr.InitialState, func(a, b int) bool {
		return instr.InitialState[a].Instances[0].First < instr.InitialState[b].Instances[0].First
	})
	if d := append(append(append([]int(nil), p.diff.Add...), p.diff.Update...), p.diff.Unchanged...); len(d) > 0 {
		instr.DesiredState = &api.InstanceTaskConfig{Task: p.tc, Instances: toRanges(d)}
	}
	ctl, r := update.New(p.settings, p.diff.Instances(p.current, p.desired), now, user, message)
	u := &jobUpdate{
		rec: api.JobUpdate{Summary: api.JobUpdateSummary{Key: key, User: user, Metadata: req.Metadata,
			State: api.JobUpdateState{CreatedTimestampMs: nowMS(now)}}, Instructions: instr},
		ctl: ctl, configs: map[string]api.TaskConfig{},
	}
	for _, c := range instr.InitialState {
		u.configs[configID(c.Task)] = c.Task
	}
	u.configs[p.desired] = p.tc
	s.updates[key.ID] = u
	s.drive(tx, u, r)
	if err := tx.commit(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	sum := u.summary()
	s.mu.Unlock()
	s.log.Info("job update started", "job", k, "update", key.ID, "add", p.diff.Add, "update_instances", p.diff.Update, "remove", p.diff.Remove)
	s.sendKills(ctx, tx.kills)
	s.wake()
	return &sum, nil
}

// findUpdate is the update a key names. The caller holds s.mu.
func (s *Scheduler) findUpdate(key *api.JobUpdateKey) (*jobUpdate, error) {
	if key == nil || key.ID == "" {
		return nil, invalid("A job update key (job and id) is required.")
	}
	u := s.updates[key.ID]
	if u == nil || key.Job != (api.JobKey{}) && key.Job != u.key().Job {
		return nil, invalid("No update %s for job %s.", key.ID, key.Job)
	}
	return u, nil
}

// ControlJobUpdate is pauseJobUpdate, resumeJobUpdate, abortJobUpdate and
// rollbackJobUpdate (method names the RPC).
func (s *Scheduler) ControlJobUpdate(ctx context.Context, method string, key *api.JobUpdateKey, message, user string) error {
	s.mu.Lock()
	u, err := s.findUpdate(key)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	tx := s.begin()
	now := msTime(tx.now)
	var r update.Result
	switch method {
	case "pauseJobUpdate":
		r, err = u.ctl.Pause(now, user, message)
	case "resumeJobUpdate":
		r, err = u.ctl.Resume(now, user, message)
	case "abortJobUpdate":
		r, err = u.ctl.Abort(now, user, message)
	case "rollbackJobUpdate":
		r, err = u.ctl.Rollback(now, user, message)
	default:
		err = fmt.Errorf("unknown update control %s", method)
	}
	if err != nil {
		s.mu.Unlock()
		var se *update.ErrState
		if errors.As(err, &se) {
			return invalid("%s", err.Error())
		}
		return err
	}
	s.drive(tx, u, r)
	err = tx.commit()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.log.Info("job update "+strings.TrimSuffix(method, "JobUpdate"), "update", u.key().ID, "status", u.ctl.Status, "by", user)
	s.sendKills(ctx, tx.kills)
	s.wake()
	return nil
}

// PulseJobUpdate is pulseJobUpdate: OK, or FINISHED for an update that
// is no longer active.
func (s *Scheduler) PulseJobUpdate(ctx context.Context, key *api.JobUpdateKey) (string, error) {
	s.mu.Lock()
	u, err := s.findUpdate(key)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	tx := s.begin()
	ps, r := u.ctl.Pulse(msTime(tx.now))
	if ps == update.PulseFinished {
		s.mu.Unlock()
		return string(ps), nil
	}
	s.drive(tx, u, r)
	err = tx.commit()
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	s.sendKills(ctx, tx.kills)
	s.wake()
	return string(ps), nil
}

// matches reports whether a query selects an update.
func updateMatches(q api.JobUpdateQuery, sum api.JobUpdateSummary) bool {
	k := sum.Key
	switch {
	case q.Role != "" && q.Role != k.Job.Role,
		q.Key != nil && (q.Key.ID != k.ID || q.Key.Job != (api.JobKey{}) && q.Key.Job != k.Job),
		q.JobKey != nil && *q.JobKey != k.Job,
		q.User != "" && q.User != sum.User:
		return false
	}
	if len(q.UpdateStatuses) > 0 {
		for _, st := range q.UpdateStatuses {
			if st == sum.State.Status {
				return true
			}
		}
		return false
	}
	return true
}

// queryUpdates returns the updates a query selects, newest first. The
// caller holds s.mu.
func (s *Scheduler) queryUpdates(q api.JobUpdateQuery) ([]*jobUpdate, error) {
	for _, st := range q.UpdateStatuses {
		if _, err := update.ParseStatus(st); err != nil {
			return nil, invalid("%v", err)
		}
	}
	var out []*jobUpdate
	for _, u := range s.updates {
		if updateMatches(q, u.summary()) {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].rec.Summary.State.CreatedTimestampMs, out[j].rec.Summary.State.CreatedTimestampMs
		if a != b {
			return a > b
		}
		return out[i].key().ID < out[j].key().ID
	})
	if q.Offset > 0 {
		out = out[min(q.Offset, len(out)):]
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// JobUpdateSummaries is getJobUpdateSummaries.
func (s *Scheduler) JobUpdateSummaries(q api.JobUpdateQuery) ([]api.JobUpdateSummary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	us, err := s.queryUpdates(q)
	if err != nil {
		return nil, err
	}
	out := make([]api.JobUpdateSummary, 0, len(us))
	for _, u := range us {
		out = append(out, u.summary())
	}
	return out, nil
}

// JobUpdateDetails is getJobUpdateDetails: the update a key names, or
// those a query selects.
func (s *Scheduler) JobUpdateDetails(key *api.JobUpdateKey, q *api.JobUpdateQuery) (api.GetJobUpdateDetailsResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := api.GetJobUpdateDetailsResult{DetailsList: []api.JobUpdateDetails{}}
	if key != nil {
		u, err := s.findUpdate(key)
		if err != nil {
			return res, err
		}
		d := u.details()
		res.Details, res.DetailsList = &d, append(res.DetailsList, d)
		return res, nil
	}
	if q == nil {
		return res, invalid("Either a key or a query is required.")
	}
	us, err := s.queryUpdates(*q)
	if err != nil {
		return res, err
	}
	for _, u := range us {
		res.DetailsList = append(res.DetailsList, u.details())
	}
	return res, nil
}

// UpdateDetails is the UI's view of one update.
func (s *Scheduler) UpdateDetails(key api.JobUpdateKey) (api.JobUpdateDetails, bool) {
	res, err := s.JobUpdateDetails(&key, nil)
	if err != nil || res.Details == nil {
		return api.JobUpdateDetails{}, false
	}
	return *res.Details, true
}

// JobUpdateDiff is getJobUpdateDiff: what the request would add, remove,
// update and leave unchanged, by configuration.
func (s *Scheduler) JobUpdateDiff(req api.JobUpdateRequest) (api.GetJobUpdateDiffResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.planUpdate(req)
	if err != nil {
		return api.GetJobUpdateDiffResult{}, err
	}
	groups := func(ids []int, cfg func(int) string) []api.ConfigGroup {
		by := map[string][]int{}
		for _, i := range ids {
			by[cfg(i)] = append(by[cfg(i)], i)
		}
		out := []api.ConfigGroup{}
		for _, id := range sortedKeys(by) {
			out = append(out, api.ConfigGroup{Config: p.configs[id], Instances: toRanges(by[id])})
		}
		sort.Slice(out, func(a, b int) bool { return out[a].Instances[0].First < out[b].Instances[0].First })
		return out
	}
	desired := func(int) string { return p.desired }
	current := func(i int) string { return p.current[i] }
	return api.GetJobUpdateDiffResult{
		Add: groups(p.diff.Add, desired), Remove: groups(p.diff.Remove, current),
		Update: groups(p.diff.Update, desired), Unchanged: groups(p.diff.Unchanged, current),
	}, nil
}

// updateCall dispatches the job update RPCs; ok is false for other
// methods.
func (s *Scheduler) updateCall(ctx context.Context, method string, body []byte) (api.Response, bool) {
	switch method {
	case "startJobUpdate", "pauseJobUpdate", "resumeJobUpdate", "abortJobUpdate", "rollbackJobUpdate",
		"pulseJobUpdate", "getJobUpdateSummaries", "getJobUpdateDetails", "getJobUpdateDiff":
	default:
		return api.Response{}, false
	}
	var p struct {
		Request        *api.JobUpdateRequest `json:"request"`
		Message        string                `json:"message"`
		Key            *api.JobUpdateKey     `json:"key"`
		JobUpdateQuery api.JobUpdateQuery    `json:"jobUpdateQuery"`
		Query          *api.JobUpdateQuery   `json:"query"`
	}
	if err := decodeParams(method, body, &p); err != nil {
		return s.fail(api.InvalidRequest, "%v", err), true
	}
	user := requestUser(ctx)
	switch method {
	case "startJobUpdate", "getJobUpdateDiff":
		if p.Request == nil {
			return s.fail(api.InvalidRequest, "%s needs a request (a JobUpdateRequest).", method), true
		}
		if method == "getJobUpdateDiff" {
			d, err := s.JobUpdateDiff(*p.Request)
			if err != nil {
				return s.errResponse(err), true
			}
			return s.ok(&api.Result{GetJobUpdateDiffResult: &d}), true
		}
		sum, err := s.StartJobUpdate(ctx, *p.Request, p.Message, user)
		var ae *errActiveUpdate
		switch {
		case errors.As(err, &ae):
			r := s.fail(api.InvalidRequest, "%s", err.Error())
			r.Result = &api.Result{StartJobUpdateResult: &api.StartJobUpdateResult{Key: ae.summary.Key, UpdateSummary: ae.summary}}
			return r, true
		case err != nil:
			return s.errResponse(err), true
		case sum == nil:
			return s.ok(nil, unchangedMessage), true
		}
		return s.ok(&api.Result{StartJobUpdateResult: &api.StartJobUpdateResult{Key: sum.Key, UpdateSummary: *sum}}), true
	case "pulseJobUpdate":
		st, err := s.PulseJobUpdate(ctx, p.Key)
		if err != nil {
			return s.errResponse(err), true
		}
		return s.ok(&api.Result{PulseJobUpdateResult: &api.PulseJobUpdateResult{Status: st}}), true
	case "getJobUpdateSummaries":
		sums, err := s.JobUpdateSummaries(p.JobUpdateQuery)
		if err != nil {
			return s.errResponse(err), true
		}
		return s.ok(&api.Result{GetJobUpdateSummariesResult: &api.GetJobUpdateSummariesResult{UpdateSummaries: sums}}), true
	case "getJobUpdateDetails":
		res, err := s.JobUpdateDetails(p.Key, p.Query)
		if err != nil {
			return s.errResponse(err), true
		}
		return s.ok(&api.Result{GetJobUpdateDetailsResult: &res}), true
	}
	if err := s.ControlJobUpdate(ctx, method, p.Key, p.Message, user); err != nil {
		return s.errResponse(err), true
	}
	return s.ok(nil), true
}
