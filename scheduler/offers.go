package scheduler

import (
	"context"
	"sort"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Offers are held, as Aurora holds them (min_offer_hold_time), so that a
// task that becomes PENDING is placed at once on an offer already in hand;
// an offer unused for OfferHold plus its share of OfferHoldJitter is
// declined, with a refuse_seconds filter of OfferFilterDuration.

func (s *Scheduler) onOffers(_ context.Context, offers []mesos.Offer) {
	now := s.cfg.Now()
	s.mu.Lock()
	for _, o := range offers {
		hold := s.cfg.OfferHold + time.Duration(s.cfg.Rand()*float64(s.cfg.OfferHoldJitter))
		s.offers[o.ID.Value] = heldOffer{offer: o, since: now, until: now.Add(hold)}
		s.hosts[o.Hostname] = offerAttributes(o)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *Scheduler) onRescind(id string) {
	s.mu.Lock()
	delete(s.offers, id)
	s.mu.Unlock()
}

func (s *Scheduler) declineStale(ctx context.Context) {
	now := s.cfg.Now()
	var ids []mesos.OfferID
	s.mu.Lock()
	for id, h := range s.offers {
		if !now.Before(h.until) {
			ids = append(ids, h.offer.ID)
			delete(s.offers, id)
		}
	}
	s.mu.Unlock()
	if len(ids) > 0 {
		s.send(ctx, calls.Decline(ids...).With(calls.RefuseSeconds(s.cfg.OfferFilterDuration)))
	}
}

// offerAttributes are an agent's attributes as text, Aurora's view.
func offerAttributes(o mesos.Offer) map[string][]string {
	attrs := map[string][]string{}
	for _, a := range o.Attributes {
		switch {
		case a.Text != nil:
			attrs[a.Name] = append(attrs[a.Name], a.Text.Value)
		case a.Scalar != nil:
			attrs[a.Name] = append(attrs[a.Name], formatScalar(a.Scalar.Value))
		}
	}
	return attrs
}

func matchOffer(o mesos.Offer, attrs map[string][]string, maintenance match.MaintenanceMode) match.Offer {
	mo := match.Offer{ID: o.ID.Value, AgentID: o.AgentID.Value, Hostname: o.Hostname, Attributes: attrs, Maintenance: maintenance}
	for _, r := range o.Resources {
		if r.Revocable != nil {
			// Only revocable CPUs are used, as in Aurora without
			// -enable_revocable_ram.
			if r.Name == "cpus" {
				mo.RevocableCPUs += r.GetScalar().GetValue()
			}
			continue
		}
		switch r.Name {
		case "cpus":
			mo.CPUs += r.GetScalar().GetValue()
		case "mem":
			mo.MemMB += r.GetScalar().GetValue()
		case "disk":
			mo.DiskMB += r.GetScalar().GetValue()
		case "ports":
			for _, rg := range r.GetRanges().GetRange() {
				mo.Ports = append(mo.Ports, match.Range{Begin: rg.Begin, End: rg.End})
			}
		}
	}
	if u := o.Unavailability; u != nil {
		mo.UnavailabilityStart = time.Unix(0, u.Start.Nanoseconds)
	}
	return mo
}

// agentOffers are the held offers as the matcher sees them: one per agent,
// the sum of the agent's held offers (Mesos offers resources freed while an
// offer is outstanding in a new offer; together they may fit a task that
// neither does), named by the first of their ids; and, by that name, the
// offers it sums, all accepted together. They come sorted by name. The
// caller holds s.mu.
func (s *Scheduler) agentOffers() ([]match.Offer, map[string][]mesos.Offer) {
	byAgent := map[string][]mesos.Offer{}
	for _, h := range s.offers {
		byAgent[h.offer.AgentID.Value] = append(byAgent[h.offer.AgentID.Value], h.offer)
	}
	var offers []match.Offer
	byID := map[string][]mesos.Offer{}
	for _, held := range byAgent {
		sort.Slice(held, func(i, j int) bool { return held[i].ID.Value < held[j].ID.Value })
		var mo match.Offer
		for i, o := range held {
			one := matchOffer(o, s.hosts[o.Hostname], s.maintenance[o.Hostname])
			if i == 0 {
				mo = one
				continue
			}
			mo.CPUs += one.CPUs
			mo.RevocableCPUs += one.RevocableCPUs
			mo.MemMB += one.MemMB
			mo.DiskMB += one.DiskMB
			mo.Ports = append(mo.Ports, one.Ports...)
			if mo.UnavailabilityStart.IsZero() {
				mo.UnavailabilityStart = one.UnavailabilityStart
			}
		}
		offers = append(offers, mo)
		byID[mo.ID] = held
	}
	sort.Slice(offers, func(i, j int) bool { return offers[i].ID < offers[j].ID })
	return offers, byID
}

// matcher is the offer matcher with the scheduler's executor overhead and
// unavailability threshold.
func (s *Scheduler) matcher() *match.Matcher {
	m := match.NewMatcher(s.cfg.Now())
	m.Overhead = match.Overhead{CPUs: s.cfg.Overhead.CPUs, MemMB: s.cfg.Overhead.MemMB}
	m.UnavailabilityThreshold = s.cfg.UnavailabilityThreshold
	return m
}

// request is the matcher's view of a pending task.
func request(t *api.ScheduledTask) match.Request {
	c := t.AssignedTask.Task
	cpus, ram, disk, ports := c.Scalars()
	r := match.Request{
		TaskID: t.AssignedTask.TaskID, Job: match.JobKey{Role: c.Job.Role, Environment: c.Job.Environment, Name: c.Job.Name},
		Instance: t.AssignedTask.InstanceID, CPUs: cpus, MemMB: float64(ram), DiskMB: float64(disk), PortNames: ports,
		Revocable: tiers[c.Tier].revocable,
	}
	for _, con := range c.Constraints {
		mc := match.Constraint{Name: con.Name}
		switch {
		case con.Constraint.Limit != nil:
			mc.Limit = con.Constraint.Limit.Limit
		case con.Constraint.Value != nil:
			mc.Negated, mc.Values = con.Constraint.Value.Negated, con.Constraint.Value.Values
		}
		r.Constraints = append(r.Constraints, mc)
	}
	return r
}

// reservation keeps an agent for one instance's next task: a job update
// killed the instance's old task there, and the new one fits in its place
// (Aurora's KILL_TASK_AND_RESERVE). Until the new task is placed, or the
// reservation expires, no other task gets the agent's offers, and the new
// task waits for them.
type reservation struct {
	job      api.JobKey
	instance int
	until    time.Time
	// taskID is set when the preemptor reserved the agent for this PENDING
	// task; the reservation ends as soon as the task is no longer PENDING.
	taskID string
}

// reserve keeps agentID for an instance. The caller holds s.mu.
func (s *Scheduler) reserve(agentID string, k api.JobKey, instance int, now time.Time) {
	s.reserved[agentID] = reservation{job: k, instance: instance, until: now.Add(s.cfg.UpdateReservation)}
	s.reservationsMade++
}

// releaseReservation frees the agent kept for an instance. The caller
// holds s.mu.
func (s *Scheduler) releaseReservation(k api.JobKey, instance int) {
	for a, r := range s.reserved {
		if r.job == k && r.instance == instance {
			delete(s.reserved, a)
		}
	}
}

// releaseReservations frees the agents kept for a job's instances. The
// caller holds s.mu.
func (s *Scheduler) releaseReservations(k api.JobKey) {
	for a, r := range s.reserved {
		if r.job == k {
			delete(s.reserved, a)
		}
	}
}

// isPending reports whether the task is PENDING. The caller holds s.mu.
func (s *Scheduler) isPending(id string) bool {
	t := s.tasks[id]
	return t != nil && t.Status == state.Pending.String()
}

// assign places pending tasks on offers, honouring reservations: a task
// whose instance has an agent reserved goes there or waits, and the
// other tasks do not get reserved agents' offers. The caller holds s.mu.
func (s *Scheduler) assign(m *match.Matcher, offers []match.Offer, pending []match.Request, existing map[match.JobKey][]match.Placed) ([]match.Assignment, map[string][]match.Veto) {
	type instanceKey struct {
		job      match.JobKey
		instance int
	}
	now := s.cfg.Now()
	agentFor := map[instanceKey]string{}
	for a, r := range s.reserved {
		if now.After(r.until) || r.taskID != "" && !s.isPending(r.taskID) {
			delete(s.reserved, a)
			continue
		}
		agentFor[instanceKey{match.JobKey{Role: r.job.Role, Environment: r.job.Environment, Name: r.job.Name}, r.instance}] = a
	}
	if len(agentFor) == 0 {
		as, _, vetoes := m.Assign(offers, pending, existing)
		return as, vetoes
	}
	byAgent := map[string][]match.Request{}
	var rest []match.Request
	for _, r := range pending {
		if a, ok := agentFor[instanceKey{r.Job, r.Instance}]; ok {
			byAgent[a] = append(byAgent[a], r)
		} else {
			rest = append(rest, r)
		}
	}
	reservedAgents := map[string]bool{}
	for _, a := range agentFor {
		reservedAgents[a] = true
	}
	var assignments []match.Assignment
	vetoes := map[string][]match.Veto{}
	free := offers[:0:0]
	kept := map[string][]match.Offer{}
	for _, o := range offers {
		if reservedAgents[o.AgentID] {
			kept[o.AgentID] = append(kept[o.AgentID], o)
		} else {
			free = append(free, o)
		}
	}
	placed := map[match.JobKey][]match.Placed{}
	for _, a := range sortedKeys(byAgent) {
		as, _, vs := m.Assign(kept[a], byAgent[a], existing)
		assignments = append(assignments, as...)
		for id, v := range vs {
			vetoes[id] = v
		}
		for _, x := range as {
			for _, r := range byAgent[a] {
				if r.TaskID == x.TaskID {
					placed[r.Job] = append(placed[r.Job], match.Placed{Hostname: x.Hostname, Attributes: s.hosts[x.Hostname]})
				}
			}
		}
	}
	if len(rest) > 0 {
		if len(placed) > 0 {
			merged := map[match.JobKey][]match.Placed{}
			for k, v := range existing {
				merged[k] = v
			}
			for k, v := range placed {
				merged[k] = append(append([]match.Placed(nil), merged[k]...), v...)
			}
			existing = merged
		}
		as, _, vs := m.Assign(free, rest, existing)
		assignments = append(assignments, as...)
		for id, v := range vs {
			vetoes[id] = v
		}
	}
	return assignments, vetoes
}
