package match

import (
	"cmp"
	"slices"
)

// Rank is what decides whether one task may preempt another (Aurora's
// PreemptionVictimFilter): the task's role, whether its tier is preemptible
// (tiers preemptible and revocable; preferred is not) and its priority.
type Rank struct {
	Role        string
	Preemptible bool
	Priority    int
}

// MayPreempt reports whether a pending task of rank p may preempt an active
// task of rank v: a task of a non-preemptible (production) tier preempts
// preemptible tasks of any role; tasks of the same preemptibility preempt
// only within their role, and only tasks of a lower priority. A preemptible
// task never preempts a non-preemptible one.
func (p Rank) MayPreempt(v Rank) bool {
	switch {
	case !p.Preemptible && v.Preemptible:
		return true
	case p.Preemptible == v.Preemptible:
		return p.Role == v.Role && p.Priority > v.Priority
	}
	return false
}

// Victim is an active task on an agent that a pending task might preempt.
type Victim struct {
	TaskID string
	Rank
	// Revocable: the task runs on revocable resources. Its CPU is
	// compressible, so preempting it frees no CPU for others (Aurora counts
	// only its RAM, disk and ports).
	Revocable bool
	// CPUs, MemMB and DiskMB are the task's own resources; the Matcher adds
	// its executor Overhead, which is freed too.
	CPUs, MemMB, DiskMB float64
	// Ports are the ports the task holds on the agent.
	Ports []uint64
}

// Victims finds the tasks to preempt on one agent so that the pending
// request, of rank pending, fits there. slack is what the agent has free
// now: its offer's resources, or none (a zero offer with only the agent's
// AgentID, Hostname, Attributes and Maintenance set). candidates are the
// agent's active tasks; agg counts the pending task's job, for limit
// constraints (nil: none).
//
// It considers only the candidates the pending task may preempt (see
// Rank.MayPreempt) and adds them one at a time, the largest first (CPU, then
// RAM, disk and ports, compared in that order, as Aurora's
// PreemptionVictimFilter sorts them; then the lowest priority and the task
// id), until the request fits, with the agent's attributes, maintenance and
// the request's constraints checked as in Filter. It then spares every
// chosen victim the others make unnecessary, trying the highest priorities
// first. It returns nil when the request fits without preempting anything,
// and nil when even preempting every eligible candidate would not make it
// fit.
func (m *Matcher) Victims(slack Offer, req Request, pending Rank, candidates []Victim, agg *AttributeAggregate) []Victim {
	r := m.prepare(&req)
	h := m.newHost(&slack)
	if fits(h, &r, agg) {
		return nil
	}
	var eligible []Victim
	for _, v := range candidates {
		if pending.MayPreempt(v.Rank) {
			eligible = append(eligible, v)
		}
	}
	if len(eligible) == 0 {
		return nil
	}
	slices.SortStableFunc(eligible, func(a, b Victim) int {
		if c := m.compareSize(b, a); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.TaskID, b.TaskID)
	})
	for n := 1; n <= len(eligible); n++ {
		if !m.fitsWith(slack, &r, eligible[:n], agg) {
			continue
		}
		chosen := slices.Clone(eligible[:n])
		// Spare what the rest makes unnecessary: highest priority first,
		// then in the order added.
		order := make([]int, len(chosen))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(chosen[j].Priority, chosen[i].Priority) })
		spared := make([]bool, len(chosen))
		for _, i := range order {
			spared[i] = true
			var rest []Victim
			for k, v := range chosen {
				if !spared[k] {
					rest = append(rest, v)
				}
			}
			if len(rest) == 0 || !m.fitsWith(slack, &r, rest, agg) {
				spared[i] = false
			}
		}
		var out []Victim
		for k, v := range chosen {
			if !spared[k] {
				out = append(out, v)
			}
		}
		return out
	}
	return nil
}

// fitsWith reports whether the request fits the slack plus what the
// victims free.
func (m *Matcher) fitsWith(slack Offer, r *request, victims []Victim, agg *AttributeAggregate) bool {
	h := m.newHost(&slack)
	ports := slices.Clone(slack.Ports)
	for _, v := range victims {
		cpus, mem, disk := m.freed(v)
		h.cpus += cpus
		if v.Revocable {
			h.rcpus += fixed(v.CPUs) + fixed(m.Overhead.CPUs)
		}
		h.mem += mem
		h.disk += disk
		for _, p := range v.Ports {
			ports = append(ports, Range{Begin: p, End: p})
		}
	}
	h.ports = normalizeRanges(ports)
	h.nports = countPorts(h.ports)
	return fits(h, r, agg)
}

// freed is what preempting the victim gives back, in thousandths, executor
// overhead included.
func (m *Matcher) freed(v Victim) (cpus, mem, disk int64) {
	if !v.Revocable {
		cpus = fixed(v.CPUs) + fixed(m.Overhead.CPUs)
	}
	return cpus, fixed(v.MemMB) + fixed(m.Overhead.MemMB), fixed(v.DiskMB)
}

// compareSize orders victims by what preempting them frees: CPU, then RAM,
// then disk, then ports.
func (m *Matcher) compareSize(a, b Victim) int {
	ac, am, ad := m.freed(a)
	bc, bm, bd := m.freed(b)
	if c := cmp.Compare(ac, bc); c != 0 {
		return c
	}
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	if c := cmp.Compare(ad, bd); c != 0 {
		return c
	}
	return cmp.Compare(len(a.Ports), len(b.Ports))
}
