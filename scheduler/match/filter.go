package match

import (
	"slices"
	"strings"
	"time"
)

// Matcher holds the settings of the offer matcher. The zero value adds no
// executor overhead and ignores Mesos maintenance windows; NewMatcher gives
// aurorabox's defaults. A Matcher is only read by its methods, so one may be
// used by several goroutines at once.
type Matcher struct {
	// Overhead is added to every request's resources.
	Overhead Overhead
	// PortSeed selects port assignment: 0 gives each task the lowest free
	// ports of the offer; any other value draws ports from a generator
	// seeded with PortSeed and the task id.
	PortSeed uint64
	// Now is the current time, for Mesos maintenance windows.
	Now time.Time
	// UnavailabilityThreshold is how long before a Mesos maintenance window
	// a host stops taking tasks.
	UnavailabilityThreshold time.Duration
}

// NewMatcher returns a Matcher with DefaultOverhead, lowest-first ports and
// DefaultUnavailabilityThreshold, at time now.
func NewMatcher(now time.Time) *Matcher {
	return &Matcher{Overhead: DefaultOverhead, Now: now, UnavailabilityThreshold: DefaultUnavailabilityThreshold}
}

// host is an offer being matched: its attributes normalized and what is left
// of its resources.
type host struct {
	offer     *Offer
	attrs     map[string][]string
	dedicated bool
	// vetoed is the maintenance veto reason ("draining", "drained"), if any.
	vetoed string
	cpus   int64 // thousandths
	rcpus  int64 // revocable CPUs, thousandths
	mem    int64 // thousandths of MB
	disk   int64 // thousandths of MB
	ports  []Range
	nports uint64
	used   bool
}

func (m *Matcher) newHost(o *Offer) *host {
	h := &host{
		offer: o,
		attrs: hostAttributes(o.Hostname, o.Attributes),
		cpus:  fixed(o.CPUs),
		rcpus: fixed(o.RevocableCPUs),
		mem:   fixed(o.MemMB),
		disk:  fixed(o.DiskMB),
		ports: normalizeRanges(o.Ports),
	}
	_, h.dedicated = h.attrs[DedicatedAttribute]
	h.nports = countPorts(h.ports)
	switch {
	case o.Maintenance == ModeDraining || o.Maintenance == ModeDrained:
		h.vetoed = strings.ToLower(string(o.Maintenance))
	case !o.UnavailabilityStart.IsZero() && m.Now.After(o.UnavailabilityStart.Add(-m.UnavailabilityThreshold)):
		h.vetoed = strings.ToLower(string(ModeDraining))
	}
	return h
}

// cpuPool is the host's CPUs the request draws on: the revocable ones for a
// revocable request, the others otherwise.
func (h *host) cpuPool(r *request) *int64 {
	if r.Revocable {
		return &h.rcpus
	}
	return &h.cpus
}

// request is a Request prepared for matching.
type request struct {
	*Request
	cpus, mem, disk int64 // thousandths, overhead included
	ports           []string
	// constraints are sorted value constraints first (Aurora's VALUES_FIRST).
	constraints []Constraint
	dedicated   bool
	// badDedicated is set when the dedicated constraint fails
	// ValidateDedicated: it is then never satisfied.
	badDedicated bool
}

func (m *Matcher) prepare(r *Request) request {
	p := request{
		Request: r,
		cpus:    fixed(r.CPUs) + fixed(m.Overhead.CPUs),
		mem:     fixed(r.MemMB) + fixed(m.Overhead.MemMB),
		disk:    fixed(r.DiskMB),
		ports:   r.PortNames,
	}
	// Copy only what needs reordering: requests usually come sorted.
	if !sortedDistinct(p.ports) {
		p.ports = slices.Clone(p.ports)
		slices.Sort(p.ports)
		p.ports = slices.Compact(p.ports)
	}
	p.constraints = r.Constraints
	if !slices.IsSortedFunc(p.constraints, valuesFirst) {
		p.constraints = slices.Clone(p.constraints)
		slices.SortStableFunc(p.constraints, valuesFirst)
	}
	for _, c := range r.Constraints {
		if c.Name == DedicatedAttribute {
			p.dedicated = true
		}
	}
	if p.dedicated {
		p.badDedicated = ValidateDedicated(r.Job.Role, r.Constraints) != nil
	}
	return p
}

// valuesFirst orders value constraints before limit constraints.
func valuesFirst(a, b Constraint) int {
	switch {
	case a.IsLimit() == b.IsLimit():
		return 0
	case a.IsLimit():
		return 1
	}
	return -1
}

func sortedDistinct(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

// Filter returns the reasons why the request cannot go onto the offer, empty
// when it fits. agg counts the active tasks of the request's job (nil: none);
// it only matters for limit constraints.
func (m *Matcher) Filter(offer Offer, req Request, agg *AttributeAggregate) []Veto {
	r := m.prepare(&req)
	var vetoes []Veto
	m.vetoes(m.newHost(&offer), &r, agg, &vetoes)
	return vetoes
}

// fits reports whether the request fits the host: the vetoes would be empty.
// It makes the cheapest checks first and allocates nothing.
func fits(h *host, r *request, agg *AttributeAggregate) bool {
	return r.cpus <= *h.cpuPool(r) && r.mem <= h.mem && r.disk <= h.disk &&
		uint64(len(r.ports)) <= h.nports &&
		(r.dedicated || !h.dedicated) && h.vetoed == "" &&
		noConstraintVeto(h, r, agg)
}

func noConstraintVeto(h *host, r *request, agg *AttributeAggregate) bool {
	c, _ := constraintsVeto(h, r, agg)
	return c == nil
}

// vetoes checks a request against a host in Aurora's order and returns the
// total score of the vetoes of the first group that has any (0 when the
// request fits). With out non-nil, it also appends those vetoes to *out.
func (m *Matcher) vetoes(h *host, r *request, agg *AttributeAggregate, out *[]Veto) int {
	add := func(v Veto) int {
		if out != nil {
			*out = append(*out, v)
		}
		return v.Score
	}
	// 1. Dedicated host, non-dedicated task.
	if !r.dedicated && h.dedicated {
		return add(dedicatedVeto())
	}
	// 2. Aurora maintenance, then Mesos maintenance.
	if h.vetoed != "" {
		return add(maintenanceVeto(h.vetoed))
	}
	// 3. Value constraints, then limit constraints; the first failure only.
	if c, limit := constraintsVeto(h, r, agg); c != nil {
		if limit {
			if out == nil {
				return limitScore
			}
			return add(limitVeto(c.Name))
		}
		if out == nil {
			return constraintScore
		}
		return add(constraintVeto(c.Name))
	}
	// 4. Resources: every one that is short.
	score := 0
	if cpus := *h.cpuPool(r); r.cpus > cpus {
		score += add(resourceVeto(resCPU, float64(r.cpus-cpus)/scale))
	}
	if r.mem > h.mem {
		score += add(resourceVeto(resRAM, float64(r.mem-h.mem)/scale))
	}
	if r.disk > h.disk {
		score += add(resourceVeto(resDisk, float64(r.disk-h.disk)/scale))
	}
	if n := uint64(len(r.ports)); n > h.nports {
		score += add(resourceVeto(resPorts, float64(n-h.nports)))
	}
	return score
}

// constraintsVeto returns the first of the request's constraints that the host
// does not satisfy, nil if it satisfies them all, and whether that is a limit
// reached ("Limit not satisfied") rather than a mismatch ("Constraint not
// satisfied"). A limit constraint on an attribute the host lacks is a
// mismatch, as is an invalid dedicated constraint.
func constraintsVeto(h *host, r *request, agg *AttributeAggregate) (failed *Constraint, limit bool) {
	for i := range r.constraints {
		c := &r.constraints[i]
		if c.Name == DedicatedAttribute && r.badDedicated {
			return c, false
		}
		values, present := h.attrs[c.Name]
		if c.IsLimit() {
			if !present {
				return c, false
			}
			for _, v := range values {
				if agg.Count(c.Name, v) >= c.Limit {
					return c, true
				}
			}
			continue
		}
		match := false
		for _, v := range c.Values {
			if slices.Contains(values, v) {
				match = true
				break
			}
		}
		if match == c.Negated {
			return c, false
		}
	}
	return nil, false
}
