package scheduler

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// Preemption (§8.2), as Aurora's preemptor: every slot search interval,
// each PENDING task that has waited at least the preemption delay looks
// for one agent where preempting some active tasks would make room for it
// (match.Matcher.Victims decides which tasks it may preempt and which
// ones). The victims go PREEMPTING, which sends their kills, and then
// KILLED, which reschedules them as new PENDING tasks; the agent is
// reserved for the pending task, so that it lands there once the victims'
// resources come back in offers, and nothing else takes them. Aurora finds
// slots in one pass and preempts on the task's next failed scheduling
// attempt, after checking the slot again; here both happen in the same
// pass, under the same lock, so the check would always pass.

// Preemption timings of the two profiles (Aurora's -preemption_delay and
// -preemption_slot_search_interval, and the dev profile's).
const (
	AuroraPreemptionDelay              = 3 * time.Minute
	AuroraPreemptionSlotSearchInterval = time.Minute
	DevPreemptionDelay                 = 5 * time.Second
	DevPreemptionSlotSearchInterval    = time.Second
	// DefaultOfferReservation is Aurora's -offer_reservation_duration: how
	// long an agent whose tasks were preempted is kept for the task they
	// were preempted for.
	DefaultOfferReservation = 3 * time.Minute
)

// preemptionMessage prefixes the id of the task a victim is preempted for,
// in the victim's PREEMPTING event (Aurora's wording).
const preemptionMessage = "Preempting in favor of "

// preemptorStats are the preemptor's counters, under Aurora's names in
// /vars (PreemptorMetrics). Arrays are indexed by production (1) or not (0).
type preemptorStats struct {
	runs, missingAttributes int
	// attempts, found and notFound count slot searches by the pending
	// task's tier; preempted counts victims by theirs.
	attempts, found, notFound, preempted [2]int
}

func prodIndex(production bool) int {
	if production {
		return 1
	}
	return 0
}

// preemptorVars adds the preemptor's counters to /vars. The caller holds
// s.mu.
func (s *Scheduler) preemptorVars(v map[string]any) {
	p := &s.preemptor
	v["preemptor_task_processor_runs"] = p.runs
	v["preemptor_missing_attributes"] = p.missingAttributes
	v["preemptor_tasks_preempted"] = p.preempted[0] + p.preempted[1]
	for i, name := range []string{"non_prod", "prod"} {
		v["preemptor_slot_search_attempts_for_"+name] = p.attempts[i]
		v["preemptor_slot_search_successful_for_"+name] = p.found[i]
		v["preemptor_slot_search_failed_for_"+name] = p.notFound[i]
		v["preemptor_tasks_preempted_"+name] = p.preempted[i]
	}
	n := 0
	for _, r := range s.reserved {
		if r.taskID != "" {
			n++
		}
	}
	v["preemptor_agent_reservations"] = n
}

// taskRank is what decides whom a task may preempt and who may preempt it:
// its role, its tier's preemptibility (from the production flag for a
// tier this scheduler does not know) and its priority.
func taskRank(tc api.TaskConfig) match.Rank {
	preemptible := !tc.Production
	if t, ok := tiers[tc.Tier]; ok {
		preemptible = t.preemptible
	}
	return match.Rank{Role: tc.Job.Role, Preemptible: preemptible, Priority: tc.Priority}
}

// victim is the matcher's view of an active task as a possible victim.
func victim(t *api.ScheduledTask) match.Victim {
	tc := t.AssignedTask.Task
	cpus, ram, disk, _ := tc.Scalars()
	v := match.Victim{TaskID: t.AssignedTask.TaskID, Rank: taskRank(tc), Revocable: tiers[tc.Tier].revocable,
		CPUs: cpus, MemMB: float64(ram), DiskMB: float64(disk)}
	for _, p := range t.AssignedTask.AssignedPorts {
		v.Ports = append(v.Ports, uint64(p))
	}
	sort.Slice(v.Ports, func(i, j int) bool { return v.Ports[i] < v.Ports[j] })
	return v
}

// preemptLoop searches for preemption slots every slot search interval.
func (s *Scheduler) preemptLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.PreemptionSlotSearchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.preempt(ctx)
		}
	}
}

// preemptionAgent is an agent as the slot search sees it.
type preemptionAgent struct {
	host    string
	victims []match.Victim
	// dedicated: a task there asks for dedicated hosts, so the agent may be
	// dedicated even if no offer said so.
	dedicated bool
}

// preempt runs one slot search and preempts the victims it finds; it
// returns how many tasks it preempted.
func (s *Scheduler) preempt(ctx context.Context) int {
	s.mu.Lock()
	if !s.registered {
		s.mu.Unlock()
		return 0
	}
	s.preemptor.runs++
	now := s.cfg.Now()
	type instanceKey struct {
		job      api.JobKey
		instance int
	}
	reservedAgents := map[string]bool{}
	waiting := map[instanceKey]bool{} // instances an agent is already kept for
	for a, r := range s.reserved {
		if !now.After(r.until) {
			reservedAgents[a] = true
			waiting[instanceKey{r.job, r.instance}] = true
		}
	}
	agents := map[string]*preemptionAgent{}
	agent := func(id, host string) *preemptionAgent {
		a := agents[id]
		if a == nil {
			a = &preemptionAgent{host: host}
			agents[id] = a
		}
		return a
	}
	existing := map[match.JobKey][]match.Placed{}
	var pending []*api.ScheduledTask
	roles := map[string]error{}
	for _, t := range s.tasks {
		st, _ := state.ParseStatus(t.Status)
		at := t.AssignedTask
		switch {
		case st == state.Pending:
			if n := len(t.TaskEvents); n > 0 && now.Sub(fromMS(t.TaskEvents[n-1].Timestamp)) < s.cfg.PreemptionDelay {
				continue
			}
			if s.checkRoleCached(at.Task.Job.Role, roles) != nil {
				continue // it may not launch, so it preempts nothing
			}
			if !waiting[instanceKey{at.Task.Job, at.InstanceID}] {
				pending = append(pending, t)
			}
		case st.SlaveAssigned():
			k := at.Task.Job
			mk := match.JobKey{Role: k.Role, Environment: k.Environment, Name: k.Name}
			existing[mk] = append(existing[mk], match.Placed{Hostname: at.SlaveHost, Attributes: s.hosts[at.SlaveHost]})
			if at.SlaveID == "" {
				continue
			}
			a := agent(at.SlaveID, at.SlaveHost)
			a.dedicated = a.dedicated || dedicated(at.Task)
			// Tasks already on their way out free their resources anyway,
			// and a PARTITIONED task's agent is out of reach.
			switch st {
			case state.Assigned, state.Starting, state.Running:
				a.victims = append(a.victims, victim(t))
			}
		}
	}
	if len(pending) == 0 {
		s.mu.Unlock()
		return 0
	}
	offers, _ := s.agentOffers()
	slack := map[string]match.Offer{}
	for _, o := range offers {
		slack[o.AgentID] = o
		agent(o.AgentID, o.Hostname)
	}
	agentIDs := sortedKeys(agents)
	m := s.matcher()
	tx := s.begin()
	reservedNow := map[string]bool{}
	preempted := 0
	failed := map[string]bool{} // task groups that found no slot
	for _, c := range preemptionSequence(pending) {
		if failed[c.group] {
			continue
		}
		t := c.task
		at := t.AssignedTask
		req, rank := request(t), taskRank(at.Task)
		prod := prodIndex(!rank.Preemptible)
		s.preemptor.attempts[prod]++
		agg := match.NewAttributeAggregate(existing[req.Job])
		found := false
		for _, id := range agentIDs {
			a := agents[id]
			if reservedAgents[id] || len(a.victims) == 0 {
				continue
			}
			attrs, known := s.hosts[a.host]
			if !known && (len(req.Constraints) > 0 || a.dedicated) {
				// The agent has made no offer since this scheduler started:
				// without its attributes, constraints cannot be checked.
				s.preemptor.missingAttributes++
				continue
			}
			o, ok := slack[id]
			if !ok {
				o = match.Offer{AgentID: id, Hostname: a.host, Attributes: attrs, Maintenance: s.maintenance[a.host]}
			}
			victims := m.Victims(o, req, rank, a.victims, agg)
			if len(victims) == 0 {
				continue
			}
			ids := make([]string, 0, len(victims))
			for _, v := range victims {
				if tx.transition(v.TaskID, state.Preempting, preemptionMessage+at.TaskID) == state.Success {
					s.preemptor.preempted[prodIndex(!v.Preemptible)]++
					preempted++
					ids = append(ids, v.TaskID)
				}
			}
			s.reserved[id] = reservation{job: at.Task.Job, instance: at.InstanceID, until: now.Add(s.cfg.OfferReservation), taskID: at.TaskID}
			reservedAgents[id], reservedNow[id] = true, true
			existing[req.Job] = append(existing[req.Job], match.Placed{Hostname: a.host, Attributes: attrs})
			s.log.Info("preempting", "task", at.TaskID, "agent", a.host, "victims", ids)
			found = true
			break
		}
		if found {
			s.preemptor.found[prod]++
		} else {
			// The group's other tasks, with the same needs, would not find
			// one either.
			s.preemptor.notFound[prod]++
			failed[c.group] = true
		}
	}
	if len(reservedNow) == 0 {
		s.mu.Unlock()
		return 0
	}
	if err := tx.commit(); err != nil {
		for id := range reservedNow {
			delete(s.reserved, id)
		}
		s.mu.Unlock()
		return 0
	}
	s.mu.Unlock()
	s.sendKills(ctx, tx.kills)
	s.wake()
	return preempted
}

// preemptionCandidate is a pending task and its task group.
type preemptionCandidate struct {
	task  *api.ScheduledTask
	group string
}

// preemptionSequence orders the pending tasks for the slot search: by
// task group (the job and the task's configuration), taking one task of
// each group in turn (Aurora's round-robin, so that one large job does
// not take every slot); groups in job order, instances in order.
func preemptionSequence(pending []*api.ScheduledTask) []preemptionCandidate {
	sort.Slice(pending, func(i, j int) bool {
		a, b := pending[i].AssignedTask, pending[j].AssignedTask
		if a.Task.Job != b.Task.Job {
			return a.Task.Job.String() < b.Task.Job.String()
		}
		if a.InstanceID != b.InstanceID {
			return a.InstanceID < b.InstanceID
		}
		return a.TaskID < b.TaskID
	})
	var order []string
	groups := map[string][]*api.ScheduledTask{}
	for _, t := range pending {
		cfg, _ := json.Marshal(t.AssignedTask.Task)
		k := string(cfg)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], t)
	}
	out := make([]preemptionCandidate, 0, len(pending))
	for len(out) < len(pending) {
		for _, k := range order {
			if g := groups[k]; len(g) > 0 {
				out = append(out, preemptionCandidate{g[0], k})
				groups[k] = g[1:]
			}
		}
	}
	return out
}
