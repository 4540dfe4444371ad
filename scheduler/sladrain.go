package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
)

// SLA-aware host drains (slaDrainHosts, §8.7; Aurora's
// MaintenanceController.slaDrain and SlaManager). A drain request puts its
// hosts in DRAINING and is stored with its default SlaPolicy, timeout and
// creation time, so it survives a restart. Every
// Config.HostMaintenancePollInterval (and at once after a request), while
// the framework is registered, the drain pass looks at each requested DRAINING host's active tasks and moves
// a task to DRAINING (killed, replaced elsewhere) only when its SlaPolicy
// (the task's own, else the request's default) allows it:
//
//   - Count and Percentage: among the job's active tasks (numActive), the
//     other tasks RUNNING for longer than durationSecs must number at least
//     count, or be at least percentage % of numActive. A policy that would
//     let no instance go (count >= numActive, or a percentage leaving less
//     than one) is relaxed to let one go, as in Aurora. Only production
//     tasks of jobs with at least Config.SlaMinRequiredInstances active
//     tasks are checked; others go at once.
//   - Coordinator: the scheduler POSTs to coordinatorUrl?task=<cluster>/
//     <role>/<env>/<job>/<instance> a JSON body {"taskConfig": <the
//     ScheduledTask>, "task": <that key>, "forceMaintenanceCountdownMs":
//     "<ms until the forced drain>"} and drains the task when the answer is
//     200 with a JSON object whose statusKey ("drain" by default) is true.
//     Calls are made one at a time, each drain applied before the next
//     call, so a coordinator never sees two requests in flight.
//
// Once a request is older than its timeoutSecs, its hosts' tasks are
// drained without any check. Hosts stay in maintenance: DRAINED once no
// active task is left (see settleDrains), until endMaintenance. A request
// is forgotten once its host is no longer DRAINING.

// drainRequest is a stored slaDrainHosts request (Aurora's
// HostMaintenanceRequest).
type drainRequest struct {
	Host               string        `json:"host"`
	DefaultSlaPolicy   api.SlaPolicy `json:"defaultSlaPolicy"`
	TimeoutSecs        int64         `json:"timeoutSecs"`
	CreatedTimestampMs int64         `json:"createdTimestampMs"`
}

// deadline is when the request's hosts are drained regardless of SLA.
func (r drainRequest) deadline() time.Time {
	return fromMS(r.CreatedTimestampMs).Add(time.Duration(r.TimeoutSecs) * time.Second)
}

// slaState is the scheduler's SLA drain side; requests and counters are
// guarded by s.mu.
type slaState struct {
	requests map[string]drainRequest // by host; stored
	kick     chan struct{}
	pass     sync.Mutex // one drain pass at a time
	client   *http.Client

	// asking and approved are the tasks of SLA-aware updates whose
	// coordinator is being asked, and those it let go (not killed yet).
	asking, approved map[string]bool

	passes, checks, drained, forced                      int
	coordAttempts, coordSuccess, coordErrors, coordUsers int
}

// coordinatorTimeout bounds one call to a coordinator.
const coordinatorTimeout = 30 * time.Second

// initSlaDrains loads the stored drain requests. The caller is New.
func (s *Scheduler) initSlaDrains(snap *storage.Snapshot) {
	s.sla = &slaState{requests: map[string]drainRequest{}, kick: make(chan struct{}, 1),
		client: &http.Client{Timeout: coordinatorTimeout},
		asking: map[string]bool{}, approved: map[string]bool{}}
	for host, raw := range snap.DrainRequests {
		var r drainRequest
		if err := json.Unmarshal(raw, &r); err != nil {
			s.log.Error("unreadable stored drain request; ignored", "host", host, "err", err)
			continue
		}
		r.Host = host
		s.sla.requests[host] = r
	}
}

func (c *slaState) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// checkSlaPolicy validates a policy given to slaDrainHosts.
func checkSlaPolicy(p api.SlaPolicy) error {
	if p.Set() != 1 {
		return invalid("defaultSlaPolicy must set exactly one of countSlaPolicy, percentageSlaPolicy and coordinatorSlaPolicy.")
	}
	switch {
	case p.CountSlaPolicy != nil:
		if c := p.CountSlaPolicy; c.Count < 0 || c.DurationSecs < 0 {
			return invalid("countSlaPolicy: count and durationSecs must not be negative.")
		}
	case p.PercentageSlaPolicy != nil:
		if c := p.PercentageSlaPolicy; c.Percentage < 0 || c.Percentage > 100 || c.DurationSecs < 0 {
			return invalid("percentageSlaPolicy: percentage must be 0 to 100 and durationSecs not negative.")
		}
	default:
		u, err := url.Parse(p.CoordinatorSlaPolicy.CoordinatorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("coordinatorSlaPolicy: coordinatorUrl %q is not an http(s) URL.", p.CoordinatorSlaPolicy.CoordinatorURL)
		}
	}
	return nil
}

// SlaDrainHosts is slaDrainHosts: the known hosts become DRAINING (DRAINED
// at once without active tasks) and their tasks are drained as their SLA
// allows, or regardless after timeoutSecs. A new request for a host
// replaces its previous one (and restarts its timeout).
func (s *Scheduler) SlaDrainHosts(ctx context.Context, hosts api.Hosts, def *api.SlaPolicy, timeoutSecs int64) ([]api.HostStatus, []string, error) {
	if def == nil {
		return nil, nil, invalid("slaDrainHosts needs defaultSlaPolicy (an SlaPolicy).")
	}
	if err := checkSlaPolicy(*def); err != nil {
		return nil, nil, err
	}
	if timeoutSecs < 0 {
		return nil, nil, invalid("timeoutSecs must not be negative.")
	}
	s.mu.Lock()
	known, unknown, err := s.hostSet(hosts)
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	now := s.cfg.Now()
	reqs := map[string]drainRequest{}
	err = s.store.Update(func(w *storage.Writer) error {
		for _, h := range known {
			r := drainRequest{Host: h, DefaultSlaPolicy: *def, TimeoutSecs: timeoutSecs, CreatedTimestampMs: nowMS(now)}
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := w.SetDrainRequest(h, b); err != nil {
				return err
			}
			reqs[h] = r
		}
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	for h, r := range reqs {
		s.sla.requests[h] = r
	}
	tx := s.begin()
	for _, h := range known {
		tx.setMaintenance(h, match.ModeDraining)
	}
	err = tx.commit()
	res := s.statuses(known)
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("SLA-aware drain requested", "hosts", known, "timeout_secs", timeoutSecs, "ignored", unknown)
	s.sla.wake()
	s.wake()
	return res, unknownNote(unknown), nil
}

// slaDrainLoop runs the drain pass every poll interval and after each
// request.
func (s *Scheduler) slaDrainLoop(ctx context.Context) {
	timer := time.NewTimer(s.cfg.HostMaintenancePollInterval)
	defer timer.Stop()
	for {
		s.slaDrainPass(ctx)
		timer.Reset(s.cfg.HostMaintenancePollInterval)
		select {
		case <-ctx.Done():
			return
		case <-s.sla.kick:
		case <-timer.C:
		}
	}
}

// coordinatorCheck is a task waiting for its coordinator's answer.
type coordinatorCheck struct {
	host, taskID string
	policy       api.CoordinatorSlaPolicy
	deadline     time.Time
}

// slaDrainPass drains what the requests allow now: count and percentage
// checks in one stored batch, then the coordinators, one call at a time.
func (s *Scheduler) slaDrainPass(ctx context.Context) {
	c := s.sla
	c.pass.Lock()
	defer c.pass.Unlock()
	s.mu.Lock()
	if !s.registered {
		// Before reconciliation the tasks' states may be stale, and
		// kills could not be sent: wait for the next pass.
		s.mu.Unlock()
		return
	}
	c.passes++
	s.forgetDrainRequests()
	tx := s.begin()
	var asks []coordinatorCheck
	for _, h := range sortedKeys(c.requests) {
		req := c.requests[h]
		force := !tx.now.Before(req.deadline())
		for _, t := range s.drainCandidates(h) {
			pol := taskSlaPolicy(t, req.DefaultSlaPolicy)
			id := t.AssignedTask.TaskID
			switch {
			case force:
				if tx.transition(id, state.Draining, drainingMessage) == state.Success {
					c.forced++
				}
			case pol.CoordinatorSlaPolicy != nil:
				asks = append(asks, coordinatorCheck{host: h, taskID: id, policy: *pol.CoordinatorSlaPolicy, deadline: req.deadline()})
			default:
				c.checks++
				if s.slaAllows(t, pol, tx.now) && tx.transition(id, state.Draining, drainingMessage) == state.Success {
					c.drained++
				}
			}
		}
	}
	err := tx.commit()
	s.mu.Unlock()
	if err == nil && len(tx.kills)+len(tx.dirty) > 0 {
		s.sendKills(ctx, tx.kills)
		s.wake()
	}
	for _, a := range asks {
		if ctx.Err() != nil {
			return
		}
		s.askCoordinator(ctx, a)
	}
}

// forgetDrainRequests drops the requests of hosts that are no longer
// DRAINING (drained, or out of maintenance). The caller holds s.mu.
func (s *Scheduler) forgetDrainRequests() {
	var gone []string
	for h := range s.sla.requests {
		if s.hostMode(h) != match.ModeDraining {
			gone = append(gone, h)
		}
	}
	if len(gone) == 0 {
		return
	}
	err := s.store.Update(func(w *storage.Writer) error {
		for _, h := range gone {
			if err := w.SetDrainRequest(h, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("drain requests not forgotten", "hosts", gone, "err", err)
		return
	}
	for _, h := range gone {
		delete(s.sla.requests, h)
	}
}

// drainCandidates are a host's active tasks not already on their way out,
// by job and instance. The caller holds s.mu.
func (s *Scheduler) drainCandidates(host string) []*api.ScheduledTask {
	var out []*api.ScheduledTask
	for _, id := range s.activeOnHost(host) {
		t := s.tasks[id]
		switch st, _ := state.ParseStatus(t.Status); st {
		case state.Draining, state.Killing, state.Preempting, state.Restarting:
			continue
		}
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].AssignedTask, out[j].AssignedTask
		if a.Task.Job != b.Task.Job {
			return a.Task.Job.String() < b.Task.Job.String()
		}
		return a.InstanceID < b.InstanceID
	})
	return out
}

// taskSlaPolicy is the task's own SlaPolicy when it has a valid one, else
// def.
func taskSlaPolicy(t *api.ScheduledTask, def api.SlaPolicy) api.SlaPolicy {
	raw := t.AssignedTask.Task.SlaPolicy
	if len(raw) == 0 || string(raw) == "null" {
		return def
	}
	var p api.SlaPolicy
	if err := json.Unmarshal(raw, &p); err != nil || p.Set() != 1 {
		return def
	}
	return p
}

// slaAllows reports whether a count or percentage policy lets task t go
// now. The caller holds s.mu.
func (s *Scheduler) slaAllows(t *api.ScheduledTask, p api.SlaPolicy, now time.Time) bool {
	tc := t.AssignedTask.Task
	active := s.activeTasks(tc.Job, nil)
	total := len(active)
	if !tc.Production || total < s.cfg.SlaMinRequiredInstances {
		return true // not checked, as in Aurora
	}
	var dur time.Duration
	switch {
	case p.CountSlaPolicy != nil:
		dur = time.Duration(p.CountSlaPolicy.DurationSecs) * time.Second
	case p.PercentageSlaPolicy != nil:
		dur = time.Duration(p.PercentageSlaPolicy.DurationSecs) * time.Second
	default:
		return false
	}
	up := 0
	for _, o := range active {
		if o.AssignedTask.TaskID != t.AssignedTask.TaskID && runningLongerThan(o, dur, now) {
			up++
		}
	}
	return meetsSla(p, up, total)
}

// runningLongerThan reports whether t is RUNNING and has been since more
// than d before now (by its latest RUNNING event).
func runningLongerThan(t *api.ScheduledTask, d time.Duration, now time.Time) bool {
	if t.Status != state.Running.String() {
		return false
	}
	var last int64 = -1
	for _, e := range t.TaskEvents {
		if e.Status == state.Running.String() && e.Timestamp > last {
			last = e.Timestamp
		}
	}
	return last >= 0 && now.Sub(fromMS(last)) > d
}

// meetsSla reports whether up of total instances staying up satisfies a
// count or percentage policy, relaxing a policy that would let no
// instance go so that it lets one go.
func meetsSla(p api.SlaPolicy, up, total int) bool {
	if total <= 0 {
		return true
	}
	if c := p.CountSlaPolicy; c != nil {
		need := c.Count
		if int64(total)-need < 1 {
			need = int64(total) - 1
		}
		return int64(up) >= need
	}
	pct := p.PercentageSlaPolicy.Percentage
	if int64((1-pct/100)*float64(total)) < 1 {
		pct = float64(total-1) / float64(total) * 100
	}
	return float64(up)/float64(total)*100 >= pct
}

// taskKey is the coordinator's name for a task:
// <cluster>/<role>/<env>/<job>/<instance>.
func (s *Scheduler) taskKey(t *api.ScheduledTask) string {
	k := t.AssignedTask.Task.Job
	return fmt.Sprintf("%s/%s/%s/%s/%d", s.cfg.Cluster, k.Role, k.Environment, k.Name, t.AssignedTask.InstanceID)
}

// stillDraining returns the task if it is still a drain candidate of a
// requested DRAINING host. The caller holds s.mu.
func (s *Scheduler) stillDraining(host, id string) *api.ScheduledTask {
	if _, ok := s.sla.requests[host]; !ok || s.hostMode(host) != match.ModeDraining {
		return nil
	}
	for _, t := range s.drainCandidates(host) {
		if t.AssignedTask.TaskID == id {
			return t
		}
	}
	return nil
}

// askCoordinator asks a task's coordinator whether it may go, and drains
// it if so.
func (s *Scheduler) askCoordinator(ctx context.Context, a coordinatorCheck) {
	c := s.sla
	s.mu.Lock()
	t := s.stillDraining(a.host, a.taskID)
	if t == nil {
		s.mu.Unlock()
		return
	}
	key := s.taskKey(t)
	countdown := max(a.deadline.Sub(s.cfg.Now()).Milliseconds(), 0)
	body, err := json.Marshal(map[string]any{"taskConfig": *t, "task": key, "forceMaintenanceCountdownMs": strconv.FormatInt(countdown, 10)})
	c.coordAttempts++
	s.mu.Unlock()
	if err != nil {
		return
	}
	allowed, userErr, err := s.callCoordinator(ctx, a.policy, key, body)
	s.mu.Lock()
	switch {
	case err != nil:
		c.coordErrors++
		s.log.Warn("SLA coordinator unreachable", "coordinator", a.policy.CoordinatorURL, "task", key, "err", err)
	case userErr != nil:
		c.coordUsers++
		s.log.Warn("SLA coordinator refused the request", "coordinator", a.policy.CoordinatorURL, "task", key, "err", userErr)
	default:
		c.coordSuccess++
	}
	if !allowed {
		s.mu.Unlock()
		return
	}
	if s.stillDraining(a.host, a.taskID) == nil {
		s.mu.Unlock()
		return
	}
	tx := s.begin()
	ok := tx.transition(a.taskID, state.Draining, drainingMessage) == state.Success
	err = tx.commit()
	if ok && err == nil {
		c.drained++
	}
	s.mu.Unlock()
	if err == nil {
		s.sendKills(ctx, tx.kills)
		s.wake()
	}
}

// coordinatorAllows reports whether task t's coordinator let an SLA-aware
// update kill it. Without an answer yet it asks, in the background (one
// call per task at a time), and the updates are looked at again once the
// coordinator allows the kill. The caller holds s.mu.
func (s *Scheduler) coordinatorAllows(u *jobUpdate, t *api.ScheduledTask, p api.CoordinatorSlaPolicy) bool {
	c, id := s.sla, t.AssignedTask.TaskID
	if c.approved[id] {
		delete(c.approved, id)
		return true
	}
	if c.asking[id] {
		return false
	}
	key := s.taskKey(t)
	body, err := json.Marshal(map[string]any{"taskConfig": *t, "task": key})
	if err != nil {
		return false
	}
	c.asking[id] = true
	c.coordAttempts++
	s.life.goFunc(func() {
		allowed, userErr, err := s.callCoordinator(s.life.ctx, p, key, body)
		s.mu.Lock()
		delete(c.asking, id)
		switch {
		case err != nil:
			c.coordErrors++
			s.log.Warn("SLA coordinator unreachable", "coordinator", p.CoordinatorURL, "task", key, "update", u.key().ID, "err", err)
		case userErr != nil:
			c.coordUsers++
			s.log.Warn("SLA coordinator refused the request", "coordinator", p.CoordinatorURL, "task", key, "update", u.key().ID, "err", userErr)
		default:
			c.coordSuccess++
		}
		if allowed {
			c.approved[id] = true
		}
		s.mu.Unlock()
		if allowed {
			s.kickUpdates()
		}
	})
	return false
}

// callCoordinator POSTs body to the coordinator with ?task=key. It
// returns whether the answer allows the drain; userErr is a bad answer
// (not 200, or not the expected JSON), err a failed call.
func (s *Scheduler) callCoordinator(ctx context.Context, p api.CoordinatorSlaPolicy, key string, body []byte) (allowed bool, userErr, err error) {
	u, err := url.Parse(p.CoordinatorURL)
	if err != nil {
		return false, nil, err
	}
	q := u.Query()
	q.Set("task", key)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return false, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.sla.client.Do(req)
	if err != nil {
		return false, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data))), nil
	}
	var answer map[string]any
	if err := json.Unmarshal(data, &answer); err != nil {
		return false, fmt.Errorf("answer %q is not a JSON object: %v", data, err), nil
	}
	statusKey := p.StatusKey
	if statusKey == "" {
		statusKey = "drain"
	}
	v, ok := answer[statusKey].(bool)
	if !ok {
		return false, fmt.Errorf("answer %s has no boolean %q", data, statusKey), nil
	}
	return v, nil, nil
}

// slaVars adds the SLA drain counters to /vars (Aurora's sla_coordinator_*
// names). The caller holds s.mu.
func (s *Scheduler) slaVars(v map[string]any) {
	c := s.sla
	v["sla_drain_requests"], v["sla_drain_passes"], v["sla_drain_checks"] = len(c.requests), c.passes, c.checks
	v["sla_drained_tasks"], v["sla_forced_drains"] = c.drained, c.forced
	v["sla_coordinator_attempts"], v["sla_coordinator_success"] = c.coordAttempts, c.coordSuccess
	v["sla_coordinator_errors"], v["sla_coordinator_user_errors"] = c.coordErrors, c.coordUsers
}

// slaCall answers slaDrainHosts; false for any other method.
func (s *Scheduler) slaCall(ctx context.Context, method string, body []byte) (api.Response, bool) {
	if method != "slaDrainHosts" {
		return api.Response{}, false
	}
	var p struct {
		Hosts            api.Hosts      `json:"hosts"`
		DefaultSlaPolicy *api.SlaPolicy `json:"defaultSlaPolicy"`
		TimeoutSecs      int64          `json:"timeoutSecs"`
	}
	if err := decodeParams(method, body, &p); err != nil {
		return s.fail(api.InvalidRequest, "%v", err), true
	}
	st, notes, err := s.SlaDrainHosts(ctx, p.Hosts, p.DefaultSlaPolicy, p.TimeoutSecs)
	if err != nil {
		return s.errResponse(err), true
	}
	return s.ok(&api.Result{DrainHostsResult: &api.DrainHostsResult{Statuses: orEmpty(st)}}, notes...), true
}
