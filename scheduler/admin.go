package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// The admin RPCs (AuroraAdmin) other than quota and maintenance, and the
// read-only summaries.

// ForceTaskState is forceTaskState: it asks the state machine to move the
// task to status, as Aurora does; a move the machine does not allow leaves
// the task as it is (the returned note says so).
func (s *Scheduler) ForceTaskState(ctx context.Context, id, status, user string) (string, error) {
	if strings.TrimSpace(id) == "" {
		return "", invalid("taskId must not be empty.")
	}
	to, err := state.ParseStatus(status)
	if err != nil {
		return "", invalid("%v", err)
	}
	if to == state.Init {
		return "", invalid("A task cannot be forced into INIT.")
	}
	s.mu.Lock()
	t := s.tasks[id]
	if t == nil {
		s.mu.Unlock()
		return "", invalid("No task with id %s.", id)
	}
	from := t.Status
	tx := s.begin()
	out := tx.transition(id, to, "Transition forced by "+user)
	err = tx.commit()
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	s.sendKills(ctx, tx.kills)
	s.wake()
	switch out {
	case state.Success:
		s.log.Info("task state forced", "task", id, "from", from, "to", to, "by", user)
		return fmt.Sprintf("Task %s moved from %s to %s.", id, from, to), nil
	case state.Noop:
		return fmt.Sprintf("Task %s is already %s.", id, to), nil
	default:
		return fmt.Sprintf("The state machine does not allow %s → %s: task %s unchanged.", from, to, id), nil
	}
}

// pruneError is pruneTasks' refusal of active states; Aurora answers it
// with ERROR, not INVALID_REQUEST.
type pruneError struct{ msg string }

func (e *pruneError) Error() string { return e.msg }

// PruneTasks is pruneTasks: it deletes the terminal tasks the query
// selects (every terminal state unless the query names some; naming an
// active state is refused), and the non-cron jobs left without tasks. It returns how many were deleted and how many
// selected tasks were left because they are active.
func (s *Scheduler) PruneTasks(q api.TaskQuery) (pruned, skipped int, err error) {
	for _, name := range q.Statuses {
		st, err := state.ParseStatus(name)
		if err != nil {
			return 0, 0, invalid("%v", err)
		}
		if !st.Terminal() {
			return 0, 0, &pruneError{"Tasks in non-terminal state cannot be pruned."}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := q
	all.Statuses, all.Offset, all.Limit = nil, 0, 0
	var ids []string
	for _, t := range s.sortedTasks(all) {
		st, _ := state.ParseStatus(t.Status)
		switch {
		case !st.Terminal():
			skipped++
		case len(q.Statuses) == 0 || hasStatus(q.Statuses, st):
			ids = append(ids, t.AssignedTask.TaskID)
		}
	}
	if q.Limit > 0 && len(ids) > q.Limit {
		ids = ids[:q.Limit]
	}
	if len(ids) == 0 {
		return 0, skipped, nil
	}
	tx := s.begin()
	pruned = s.deleteTasks(tx, ids)
	if err := tx.commit(); err != nil {
		return 0, 0, err
	}
	s.log.Info("tasks pruned", "count", pruned)
	return pruned, skipped, nil
}

// hasStatus reports whether names (status names) include st.
func hasStatus(names []string, st state.Status) bool {
	for _, n := range names {
		if p, err := state.ParseStatus(n); err == nil && p == st {
			return true
		}
	}
	return false
}

// defaultReconcileBatch is Aurora's explicit reconciliation batch size.
const defaultReconcileBatch = 1000

// reconcileImplicit asks Mesos for the state of all the framework's tasks;
// those the store does not know are killed as their updates arrive.
func (s *Scheduler) reconcileImplicit(ctx context.Context) {
	s.mu.Lock()
	s.implicitReconciliations++
	s.mu.Unlock()
	s.send(ctx, calls.Reconcile())
}

// TriggerExplicitReconciliation is triggerExplicitTaskReconciliation.
func (s *Scheduler) TriggerExplicitReconciliation(ctx context.Context, settings api.ExplicitReconciliationSettings) (string, error) {
	batch := s.cfg.ReconcileExplicitBatchSize
	if settings.BatchSize != nil {
		if *settings.BatchSize <= 0 {
			return "", invalid("Batch size must be greater than zero.")
		}
		batch = *settings.BatchSize
	}
	if !s.Registered() {
		return "", errNotRegistered
	}
	// The batches after the first outlive the request.
	n, calls := s.reconcileExplicit(context.WithoutCancel(ctx), batch)
	return fmt.Sprintf("Explicit reconciliation of %d tasks in %d batches.", n, calls), nil
}

// TriggerImplicitReconciliation is triggerImplicitTaskReconciliation.
func (s *Scheduler) TriggerImplicitReconciliation(ctx context.Context) error {
	if !s.Registered() {
		return errNotRegistered
	}
	s.reconcileImplicit(ctx)
	return nil
}

// transientError is a failure worth retrying: the API answers
// ERROR_TRANSIENT.
type transientError struct{ msg string }

func (e *transientError) Error() string { return e.msg }

var errNotRegistered = &transientError{"The scheduler is not registered with Mesos; try again later."}

// PendingReasons is getPendingReason: why each PENDING task the query
// selects was not placed in the last scheduling round (the vetoes of its
// nearest fit, joined by ","; empty when no round has considered it).
func (s *Scheduler) PendingReasons(q api.TaskQuery) ([]api.PendingReason, error) {
	if len(q.SlaveHosts) > 0 {
		return nil, invalid("SlaveHosts are not supported in getPendingReason queries.")
	}
	if len(q.Statuses) > 0 {
		return nil, invalid("Statuses are not supported in getPendingReason queries.")
	}
	q.Statuses = []string{state.Pending.String()}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.PendingReason{}
	for _, t := range s.sortedTasks(q) {
		var rs []string
		for _, v := range s.vetoes[t.AssignedTask.TaskID] {
			rs = append(rs, v.Reason)
		}
		out = append(out, api.PendingReason{TaskID: t.AssignedTask.TaskID, Reason: strings.Join(rs, ",")})
	}
	return out, nil
}

// ConfigSummary is getConfigSummary: the distinct configurations of the
// job's active tasks, each with the ranges of instances running it.
func (s *Scheduler) ConfigSummary(k api.JobKey) (api.ConfigSummary, error) {
	if err := k.Validate(); err != nil {
		return api.ConfigSummary{}, invalid("%v", err)
	}
	s.mu.Lock()
	tasks := s.activeTasks(k, nil)
	type group struct {
		config    api.TaskConfig
		instances []int
	}
	var groups []*group
	byConfig := map[string]*group{}
	for _, t := range tasks {
		key, _ := json.Marshal(t.AssignedTask.Task)
		g := byConfig[string(key)]
		if g == nil {
			g = &group{config: t.AssignedTask.Task}
			byConfig[string(key)] = g
			groups = append(groups, g)
		}
		g.instances = append(g.instances, t.AssignedTask.InstanceID)
	}
	s.mu.Unlock()
	sum := api.ConfigSummary{Key: k, Groups: []api.ConfigGroup{}}
	for _, g := range groups { // in instance order: tasks are sorted
		sum.Groups = append(sum.Groups, api.ConfigGroup{Config: g.config, Instances: toRanges(g.instances)})
	}
	return sum, nil
}

// toRanges folds instance ids into sorted inclusive ranges.
func toRanges(ids []int) []api.Range {
	ids = append([]int(nil), ids...)
	sort.Ints(ids)
	var out []api.Range
	for _, id := range ids {
		if n := len(out); n > 0 && (id == out[n-1].Last+1 || id == out[n-1].Last) {
			out[n-1].Last = id
			continue
		}
		out = append(out, api.Range{First: id, Last: id})
	}
	return out
}

// RoleSummaries is getRoleSummary: per role, the jobs with tasks in the
// store and the cron jobs.
func (s *Scheduler) RoleSummaries() []api.RoleSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := map[string]map[api.JobKey]bool{}
	cron := map[string]int{}
	add := func(k api.JobKey) {
		if jobs[k.Role] == nil {
			jobs[k.Role] = map[api.JobKey]bool{}
		}
		jobs[k.Role][k] = true
	}
	for _, t := range s.tasks {
		add(t.AssignedTask.Task.Job)
	}
	for k := range s.cronJobs {
		cron[k.Role]++
		if jobs[k.Role] == nil {
			jobs[k.Role] = map[api.JobKey]bool{}
		}
	}
	out := []api.RoleSummary{}
	for _, role := range sortedKeys(jobs) {
		out = append(out, api.RoleSummary{Role: role, JobCount: len(jobs[role]), CronJobCount: cron[role]})
	}
	return out
}

// agentSize is the most an agent was seen to have: an offer's resources
// plus what this framework's tasks there held at the time.
type agentSize struct {
	Host                string
	CPUs, MemMB, DiskMB float64
}

// noteOffers updates the agents' sizes from the held offers not yet seen.
// The caller holds s.mu.
func (s *Scheduler) noteOffers() {
	var fresh []heldOffer
	for id, h := range s.offers {
		if !s.seenOffers[id] {
			fresh = append(fresh, h)
		}
	}
	for id := range s.seenOffers {
		if _, ok := s.offers[id]; !ok {
			delete(s.seenOffers, id)
		}
	}
	if len(fresh) == 0 {
		return
	}
	// What our tasks hold on each agent (an offer shows only what is free).
	used := map[string]agentSize{}
	for _, t := range s.tasks {
		st, _ := state.ParseStatus(t.Status)
		if !st.SlaveAssigned() || t.AssignedTask.SlaveID == "" {
			continue
		}
		cpus, ram, disk, _ := t.AssignedTask.Task.Scalars()
		u := used[t.AssignedTask.SlaveID]
		u.CPUs += cpus + s.cfg.Overhead.CPUs
		u.MemMB += float64(ram) + s.cfg.Overhead.MemMB
		u.DiskMB += float64(disk)
		used[t.AssignedTask.SlaveID] = u
	}
	for _, h := range fresh {
		s.seenOffers[h.offer.ID.Value] = true
		mo := matchOffer(h.offer, nil, "")
		u := used[mo.AgentID]
		a := s.agents[mo.AgentID]
		a.Host = mo.Hostname
		a.CPUs = max(a.CPUs, mo.CPUs+u.CPUs)
		a.MemMB = max(a.MemMB, mo.MemMB+u.MemMB)
		a.DiskMB = max(a.DiskMB, mo.DiskMB+u.DiskMB)
		s.agents[mo.AgentID] = a
	}
}

// watchOffers notes the agents' sizes from held offers every second, so
// that offers declined unused still count.
func (s *Scheduler) watchOffers(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.mu.Lock()
			s.noteOffers()
			s.mu.Unlock()
		}
	}
}

// checkFits refuses a task that no agent seen in offers could run (with
// the executor's overhead); with no offer seen yet, anything goes. The
// caller holds s.mu.
func (s *Scheduler) checkFits(tc api.TaskConfig) error {
	s.noteOffers()
	if len(s.agents) == 0 {
		return nil
	}
	cpus, ram, disk, _ := tc.Scalars()
	needCPU, needMem, needDisk := cpus+s.cfg.Overhead.CPUs, float64(ram)+s.cfg.Overhead.MemMB, float64(disk)
	const eps = 1e-9
	var largest agentSize
	for _, a := range s.agents {
		if needCPU <= a.CPUs+eps && needMem <= a.MemMB+eps && needDisk <= a.DiskMB+eps {
			return nil
		}
		if a.CPUs+a.MemMB/1024+a.DiskMB/1024 > largest.CPUs+largest.MemMB/1024+largest.DiskMB/1024 {
			largest = a
		}
	}
	return invalid("Task resources exceed the largest agent: the task needs %s cpus, %s MB RAM, %s MB disk "+
		"(executor overhead included) and no agent has as much; largest seen: %s with %s cpus, %s MB RAM, %s MB disk.",
		formatScalar(needCPU), formatScalar(needMem), formatScalar(needDisk),
		largest.Host, formatScalar(largest.CPUs), formatScalar(largest.MemMB), formatScalar(largest.DiskMB))
}

// offerJSON is one held offer on /offers.
type offerJSON struct {
	ID             string              `json:"id"`
	AgentID        string              `json:"agent_id"`
	Hostname       string              `json:"hostname"`
	Resources      []resourceJSON      `json:"resources"`
	Attributes     map[string][]string `json:"attributes"`
	Unavailability *unavailabilityJSON `json:"unavailability,omitempty"`
	HeldSince      string              `json:"held_since"`
}

type resourceJSON struct {
	Name      string      `json:"name"`
	Type      string      `json:"type"`
	Scalar    *float64    `json:"scalar,omitempty"`
	Ranges    []rangeJSON `json:"ranges,omitempty"`
	Set       []string    `json:"set,omitempty"`
	Role      string      `json:"role,omitempty"`
	Revocable bool        `json:"revocable,omitempty"`
}

type rangeJSON struct {
	Begin uint64 `json:"begin"`
	End   uint64 `json:"end"`
}

type unavailabilityJSON struct {
	StartNanos    int64  `json:"start_nanos"`
	DurationNanos *int64 `json:"duration_nanos,omitempty"`
}

func toOfferJSON(h heldOffer) offerJSON {
	o := h.offer
	out := offerJSON{ID: o.ID.Value, AgentID: o.AgentID.Value, Hostname: o.Hostname, Resources: []resourceJSON{},
		Attributes: offerAttributes(o), HeldSince: h.since.UTC().Format(time.RFC3339Nano)}
	for _, r := range o.Resources {
		rj := resourceJSON{Name: r.Name, Type: r.GetType().String(), Role: r.GetRole(), Revocable: r.Revocable != nil}
		switch r.GetType() {
		case mesos.SCALAR:
			v := r.GetScalar().GetValue()
			rj.Scalar = &v
		case mesos.RANGES:
			for _, rg := range r.GetRanges().GetRange() {
				rj.Ranges = append(rj.Ranges, rangeJSON{rg.Begin, rg.End})
			}
		case mesos.SET:
			rj.Set = r.GetSet().GetItem()
		}
		out.Resources = append(out.Resources, rj)
	}
	if u := o.Unavailability; u != nil {
		out.Unavailability = &unavailabilityJSON{StartNanos: u.Start.Nanoseconds}
		if u.Duration != nil {
			d := u.Duration.Nanoseconds
			out.Unavailability.DurationNanos = &d
		}
	}
	return out
}

// serveOffers is /offers: the offers the scheduler holds, by id.
func (s *Scheduler) serveOffers(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	out := []offerJSON{}
	for _, id := range sortedKeys(s.offers) {
		out = append(out, toOfferJSON(s.offers[id]))
	}
	s.mu.Unlock()
	writeJSON(w, out)
}
