package match

import "slices"

// Assign runs one scheduling round: it places as many of the pending requests
// as fit onto the offers, in the order the requests are given, each on the
// first offer that fits in Aurora's offer order, several to an offer if they
// fit. existing holds the active tasks of the requests' jobs, for limit
// constraints; tasks placed in the round count too. The inputs are not
// modified.
//
// It returns the assignments in request order; the offers that got no task,
// in input order and unchanged (an offer that got tasks is used up: the
// caller accepts it with all its tasks and Mesos offers the rest again); and,
// for every request left pending, the vetoes of its nearest fit (empty when
// there was no offer to try). A request whose TaskID repeats an earlier one is
// ignored. Offers without CPU (revocable or not) or memory are not tried, as
// in Aurora. A revocable request takes its CPUs only from revocable CPUs, any
// other only from non-revocable ones.
func (m *Matcher) Assign(offers []Offer, pending []Request, existing map[JobKey][]Placed) (assignments []Assignment, remaining []Offer, vetoes map[string][]Veto) {
	hosts := make([]*host, 0, len(offers))
	for i := range offers {
		if (offers[i].CPUs > 0 || offers[i].RevocableCPUs > 0) && offers[i].MemMB > 0 {
			hosts = append(hosts, m.newHost(&offers[i]))
		}
	}
	// Aurora's order: maintenance mode, then later Mesos maintenance first
	// (none is latest), then input order (stable sort).
	slices.SortStableFunc(hosts, func(a, b *host) int {
		if d := a.offer.Maintenance.rank() - b.offer.Maintenance.rank(); d != 0 {
			return d
		}
		as, bs := a.offer.UnavailabilityStart, b.offer.UnavailabilityStart
		switch {
		case as.Equal(bs):
			return 0
		case as.IsZero():
			return -1
		case bs.IsZero():
			return 1
		case as.After(bs):
			return -1
		}
		return 1
	})

	jobs := make(map[JobKey]*jobState)
	var last *jobState
	seen := make(map[string]bool, len(pending))
	assignments = make([]Assignment, 0, len(pending))
	var unplaced []int
	for i := range pending {
		req := &pending[i]
		if seen[req.TaskID] {
			continue
		}
		seen[req.TaskID] = true
		// Requests usually come job by job: skip the map when the job repeats.
		if last == nil || last.key != req.Job {
			if last = jobs[req.Job]; last == nil {
				last = &jobState{key: req.Job, existing: existing[req.Job]}
				jobs[req.Job] = last
			}
		}
		r := m.prepare(req)
		agg := last.aggregate(&r)
		var chosen *host
		for _, h := range hosts {
			if fits(h, &r, agg) {
				chosen = h
				break
			}
		}
		if chosen == nil {
			unplaced = append(unplaced, i)
			continue
		}
		chosen.used = true
		*chosen.cpuPool(&r) -= r.cpus
		chosen.mem -= r.mem
		chosen.disk -= r.disk
		last.placed = append(last.placed, chosen)
		assignments = append(assignments, Assignment{
			TaskID:   req.TaskID,
			OfferID:  chosen.offer.ID,
			AgentID:  chosen.offer.AgentID,
			Hostname: chosen.offer.Hostname,
			Ports:    chosen.takePorts(r.ports, m.PortSeed, req.TaskID),
		})
	}

	// Nearest fits, against the offers as the round left them: score every
	// offer, then list the vetoes of the best (the first of equals).
	vetoes = make(map[string][]Veto, len(unplaced))
	for _, i := range unplaced {
		r := m.prepare(&pending[i])
		agg := jobs[r.Job].aggregate(&r)
		best := []Veto{}
		var bestHost *host
		bestScore := 0
		for _, h := range hosts {
			if s := m.vetoes(h, &r, agg, nil); bestHost == nil || s < bestScore {
				bestHost, bestScore = h, s
			}
		}
		if bestHost != nil {
			m.vetoes(bestHost, &r, agg, &best)
		}
		vetoes[r.TaskID] = best
	}

	used := make(map[*Offer]bool, len(hosts))
	for _, h := range hosts {
		if h.used {
			used[h.offer] = true
		}
	}
	for i := range offers {
		if !used[&offers[i]] {
			remaining = append(remaining, offers[i])
		}
	}
	return assignments, remaining, vetoes
}

// jobState is what the round knows of one job: its active tasks before the
// round, the hosts it placed tasks on during the round, and the aggregate of
// both, built only when a limit constraint needs it.
type jobState struct {
	key      JobKey
	existing []Placed
	placed   []*host
	agg      *AttributeAggregate
	counted  int // how many of placed agg counts
}

// aggregate returns the job's aggregate, up to date, if the request has a
// limit constraint, and nil (which the other constraints do not read)
// otherwise.
func (j *jobState) aggregate(r *request) *AttributeAggregate {
	if !slices.ContainsFunc(r.constraints, Constraint.IsLimit) {
		return nil
	}
	if j.agg == nil {
		j.agg = NewAttributeAggregate(j.existing)
	}
	for _, h := range j.placed[j.counted:] {
		j.agg.add(h.attrs)
	}
	j.counted = len(j.placed)
	return j.agg
}
