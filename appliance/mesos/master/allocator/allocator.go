package allocator

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
)

// DefaultRole is the role of a framework that names none.
const DefaultRole = "*"

// DefaultRefuse is Mesos' Filters.refuse_seconds default.
const DefaultRefuse = 5 * time.Second

// maxRefuse is the longest filter Mesos installs.
const maxRefuse = 365 * 24 * time.Hour

// Config configures an Engine.
type Config struct {
	// Weights are the roles' weights (Mesos' --weights); a role not
	// listed weighs 1.
	Weights map[string]float64
	// OfferTimeout is how long an offer may stay outstanding before Expire
	// returns it (Mesos' --offer_timeout); 0: forever.
	OfferTimeout time.Duration
	// DefaultRefuse is the filter of a DECLINE or ACCEPT without Filters;
	// 0 means DefaultRefuse (5 s).
	DefaultRefuse time.Duration
	// OfferIDPrefix starts every offer id; a counter follows.
	OfferIDPrefix string
}

// Offer is one outstanding offer.
type Offer struct {
	ID        string
	Framework string
	Agent     string
	Resources mesos.Resources
	Created   time.Time
}

// Engine is the allocator's state. It is not safe for concurrent use: the
// master calls it under its lock.
type Engine struct {
	cfg        Config
	agents     map[string]*agent
	agentOrder []string
	frameworks map[string]*framework
	roleCount  map[string]uint64 // times a role was chosen
	offers     map[string]*Offer
	nextOffer  int
	// total is the sum of the agents' scalar resources, by name.
	total map[string]float64
}

type agent struct {
	id        string
	total     mesos.Resources
	allocated mesos.Resources // offered or used, by any framework
	active    bool
}

type framework struct {
	id         string
	role       string
	revocable  bool
	active     bool
	suppressed bool
	count      uint64
	alloc      map[string]mesos.Resources // by agent: offered or used
	scalars    map[string]float64         // alloc summed over agents
	filters    map[string][]filter        // by agent
}

type filter struct {
	refused mesos.Resources
	until   time.Time
}

// New returns an engine with no agents and no frameworks.
func New(cfg Config) *Engine {
	if cfg.DefaultRefuse <= 0 {
		cfg.DefaultRefuse = DefaultRefuse
	}
	return &Engine{
		cfg: cfg, agents: map[string]*agent{}, frameworks: map[string]*framework{},
		roleCount: map[string]uint64{}, offers: map[string]*Offer{}, total: map[string]float64{},
	}
}

// ParseWeights parses Mesos' --weights syntax, "role=weight,role=weight";
// every weight must be a positive number.
func ParseWeights(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		role, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || role == "" {
			return nil, fmt.Errorf("weight %q: want role=weight", part)
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("weight %q: the weight of role %s must be a positive number", part, role)
		}
		if _, dup := out[role]; dup {
			return nil, fmt.Errorf("weight %q: role %s has a weight already", part, role)
		}
		out[role] = v
	}
	return out, nil
}

// Weight is a role's weight.
func (e *Engine) Weight(role string) float64 {
	if w, ok := e.cfg.Weights[role]; ok {
		return w
	}
	return 1
}

// AddAgent adds an agent, or sets the total of a known one. A new agent
// is inactive until SetAgentActive.
func (e *Engine) AddAgent(id string, total mesos.Resources) {
	a := e.agents[id]
	if a == nil {
		a = &agent{id: id}
		e.agents[id] = a
		e.agentOrder = append(e.agentOrder, id)
	}
	a.total = total.Clone()
	e.total = map[string]float64{}
	for _, a := range e.agents {
		addScalars(e.total, a.total)
	}
}

// SetAgentActive marks an agent as one whose resources may be offered
// (connected, and its machine not DOWN) or not.
func (e *Engine) SetAgentActive(id string, active bool) {
	if a := e.agents[id]; a != nil {
		a.active = active
	}
}

// AddFramework adds a framework, or updates a known one's role and
// capability; a new framework is inactive until SetFrameworkActive.
func (e *Engine) AddFramework(id, role string, revocable bool) {
	if role == "" {
		role = DefaultRole
	}
	fw := e.frameworks[id]
	if fw == nil {
		fw = &framework{id: id, alloc: map[string]mesos.Resources{}, scalars: map[string]float64{}, filters: map[string][]filter{}}
		e.frameworks[id] = fw
	}
	fw.role, fw.revocable = role, revocable
}

// SetFrameworkActive marks a framework as connected (it may be offered
// resources) or not. Its allocation counts in its role's share either way.
func (e *Engine) SetFrameworkActive(id string, active bool) {
	if fw := e.frameworks[id]; fw != nil {
		fw.active = active
	}
}

// RemoveFramework forgets a framework: its offers and allocations go and
// their resources are free.
func (e *Engine) RemoveFramework(id string) {
	fw := e.frameworks[id]
	if fw == nil {
		return
	}
	for oid, o := range e.offers {
		if o.Framework == id {
			delete(e.offers, oid)
		}
	}
	for aid, res := range fw.alloc {
		if a := e.agents[aid]; a != nil {
			a.allocated = a.allocated.Minus(res...)
		}
	}
	delete(e.frameworks, id)
}

// Suppress stops offers to a framework until Revive.
func (e *Engine) Suppress(id string) {
	if fw := e.frameworks[id]; fw != nil {
		fw.suppressed = true
	}
}

// Revive ends a framework's suppression and clears its filters.
func (e *Engine) Revive(id string) {
	if fw := e.frameworks[id]; fw != nil {
		fw.suppressed = false
		fw.filters = map[string][]filter{}
	}
}

// Allocated charges resources in use on an agent to a framework without
// an offer (tasks the master recovered from a re-registering agent).
func (e *Engine) Allocated(fwID, agentID string, res mesos.Resources) {
	e.allocate(fwID, agentID, res)
}

// Recover frees resources a framework used on an agent (a task ended).
func (e *Engine) Recover(fwID, agentID string, res mesos.Resources) {
	e.unallocate(fwID, agentID, res)
}

// Decline ends an offer; its resources are free again, and filtered for
// its framework by filters (see the package doc). Unknown offers are
// ignored.
func (e *Engine) Decline(now time.Time, offerID string, filters *mesos.Filters) {
	o := e.offers[offerID]
	if o == nil {
		return
	}
	delete(e.offers, offerID)
	e.unallocate(o.Framework, o.Agent, o.Resources)
	e.addFilter(now, o.Framework, o.Agent, o.Resources, filters)
}

// Accept ends offers (of one agent) that a framework used: used stays
// allocated to it, and the rest is free again and filtered as by Decline.
// Unknown offers are ignored.
func (e *Engine) Accept(now time.Time, offerIDs []string, used mesos.Resources, filters *mesos.Filters) {
	var offered mesos.Resources
	fwID, agentID := "", ""
	for _, id := range offerIDs {
		o := e.offers[id]
		if o == nil {
			continue
		}
		delete(e.offers, id)
		fwID, agentID = o.Framework, o.Agent
		offered = offered.Plus(o.Resources...)
	}
	if fwID == "" {
		return
	}
	unused := offered.Minus(used...)
	if isEmpty(unused) {
		return
	}
	e.unallocate(fwID, agentID, unused)
	e.addFilter(now, fwID, agentID, unused, filters)
}

// Rescind ends an offer without a filter: the master withdrew it.
func (e *Engine) Rescind(offerID string) {
	o := e.offers[offerID]
	if o == nil {
		return
	}
	delete(e.offers, offerID)
	e.unallocate(o.Framework, o.Agent, o.Resources)
}

// Offers returns the outstanding offers, oldest first.
func (e *Engine) Offers() []Offer {
	out := make([]Offer, 0, len(e.offers))
	for _, o := range e.offers {
		out = append(out, *o)
	}
	sortOffers(out)
	return out
}

// Expire removes the offers outstanding for Config.OfferTimeout or longer
// and returns them, oldest first; their resources are free, unfiltered.
func (e *Engine) Expire(now time.Time) []Offer {
	if e.cfg.OfferTimeout <= 0 {
		return nil
	}
	var out []Offer
	for id, o := range e.offers {
		if !now.Before(o.Created.Add(e.cfg.OfferTimeout)) {
			out = append(out, *o)
			delete(e.offers, id)
			e.unallocate(o.Framework, o.Agent, o.Resources)
		}
	}
	sortOffers(out)
	return out
}

// Next is the earliest time after which Expire or Allocate may act on
// their own: a filter's expiry or an offer's timeout. Zero: none.
func (e *Engine) Next() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, fw := range e.frameworks {
		for _, fs := range fw.filters {
			for _, f := range fs {
				earlier(f.until)
			}
		}
	}
	if e.cfg.OfferTimeout > 0 {
		for _, o := range e.offers {
			earlier(o.Created.Add(e.cfg.OfferTimeout))
		}
	}
	return next
}

// Allocate offers the active agents' free resources (see the package doc)
// and returns the new offers, in the order they were made.
func (e *Engine) Allocate(now time.Time) []Offer {
	e.dropExpiredFilters(now)
	var out []Offer
	for _, aid := range e.agentOrder {
		a := e.agents[aid]
		if !a.active {
			continue
		}
		avail := a.total.Minus(a.allocated...)
		for !isEmpty(avail) {
			fw, res := e.pick(now, a.id, avail)
			if fw == nil {
				break
			}
			o := &Offer{ID: fmt.Sprintf("%s%d", e.cfg.OfferIDPrefix, e.nextOffer), Framework: fw.id, Agent: a.id, Resources: res, Created: now}
			e.nextOffer++
			e.offers[o.ID] = o
			e.allocate(fw.id, a.id, res)
			fw.count++
			e.roleCount[fw.role]++
			avail = avail.Minus(res...)
			out = append(out, *o)
		}
	}
	return out
}

// pick returns the framework that gets avail on an agent, in DRF order,
// and what of avail it may take; nil when none may.
func (e *Engine) pick(now time.Time, agentID string, avail mesos.Resources) (*framework, mesos.Resources) {
	byRole := map[string][]*framework{}
	for _, fw := range e.frameworks {
		if fw.active && !fw.suppressed {
			byRole[fw.role] = append(byRole[fw.role], fw)
		}
	}
	roles := make([]string, 0, len(byRole))
	for r := range byRole {
		roles = append(roles, r)
	}
	roleShare := map[string]float64{}
	for _, r := range roles {
		roleShare[r] = e.RoleShare(r)
	}
	sort.Slice(roles, func(i, j int) bool {
		a, b := roles[i], roles[j]
		if roleShare[a] != roleShare[b] {
			return roleShare[a] < roleShare[b]
		}
		if e.roleCount[a] != e.roleCount[b] {
			return e.roleCount[a] < e.roleCount[b]
		}
		return a < b
	})
	for _, r := range roles {
		fws := byRole[r]
		share := map[string]float64{}
		for _, fw := range fws {
			share[fw.id] = e.dominant(fw.scalars)
		}
		sort.Slice(fws, func(i, j int) bool {
			a, b := fws[i], fws[j]
			if share[a.id] != share[b.id] {
				return share[a.id] < share[b.id]
			}
			if a.count != b.count {
				return a.count < b.count
			}
			return a.id < b.id
		})
		for _, fw := range fws {
			res := offerable(fw, avail)
			if isEmpty(res) || e.filtered(now, fw, agentID, res) {
				continue
			}
			return fw, res
		}
	}
	return nil, nil
}

// offerable is what of avail a framework may be offered: revocable
// resources only with the REVOCABLE_RESOURCES capability, as Mesos.
func offerable(fw *framework, avail mesos.Resources) mesos.Resources {
	if fw.revocable {
		return avail.Clone()
	}
	var out mesos.Resources
	for _, r := range avail {
		if r.Revocable == nil {
			out = out.Plus(r)
		}
	}
	return out
}

func (e *Engine) filtered(now time.Time, fw *framework, agentID string, res mesos.Resources) bool {
	for _, f := range fw.filters[agentID] {
		if now.Before(f.until) && resources.ContainsAll(f.refused, res) {
			return true
		}
	}
	return false
}

func (e *Engine) dropExpiredFilters(now time.Time) {
	for _, fw := range e.frameworks {
		for aid, fs := range fw.filters {
			kept := fs[:0]
			for _, f := range fs {
				if now.Before(f.until) {
					kept = append(kept, f)
				}
			}
			if len(kept) == 0 {
				delete(fw.filters, aid)
			} else {
				fw.filters[aid] = kept
			}
		}
	}
}

// RefuseFor is how long a refusal with filters keeps resources away
// (Mesos' rules; see the package doc).
func (e *Engine) RefuseFor(filters *mesos.Filters) time.Duration {
	if filters == nil || filters.RefuseSeconds == nil {
		return e.cfg.DefaultRefuse
	}
	s := filters.GetRefuseSeconds()
	switch {
	case math.IsNaN(s) || s < 0:
		return e.cfg.DefaultRefuse
	case s > maxRefuse.Seconds():
		return maxRefuse
	}
	return time.Duration(s * float64(time.Second))
}

func (e *Engine) addFilter(now time.Time, fwID, agentID string, refused mesos.Resources, filters *mesos.Filters) {
	fw := e.frameworks[fwID]
	d := e.RefuseFor(filters)
	if fw == nil || d <= 0 || isEmpty(refused) {
		return
	}
	fw.filters[agentID] = append(fw.filters[agentID], filter{refused: refused.Clone(), until: now.Add(d)})
}

func (e *Engine) allocate(fwID, agentID string, res mesos.Resources) {
	fw, a := e.frameworks[fwID], e.agents[agentID]
	if fw == nil || a == nil {
		return
	}
	fw.alloc[agentID] = fw.alloc[agentID].Plus(res...)
	a.allocated = a.allocated.Plus(res...)
	fw.rescale()
}

func (e *Engine) unallocate(fwID, agentID string, res mesos.Resources) {
	fw, a := e.frameworks[fwID], e.agents[agentID]
	if fw == nil || a == nil {
		return
	}
	fw.alloc[agentID] = fw.alloc[agentID].Minus(res...)
	if isEmpty(fw.alloc[agentID]) {
		delete(fw.alloc, agentID)
	}
	a.allocated = a.allocated.Minus(res...)
	fw.rescale()
}

func (fw *framework) rescale() {
	fw.scalars = map[string]float64{}
	for _, res := range fw.alloc {
		addScalars(fw.scalars, res)
	}
}

// dominant is the largest fraction of the agents' total that scalars hold.
func (e *Engine) dominant(scalars map[string]float64) float64 {
	share := 0.0
	for name, total := range e.total {
		if total > 0 {
			share = max(share, scalars[name]/total)
		}
	}
	return share
}

// Share is a framework's dominant share (0 for an unknown one).
func (e *Engine) Share(fwID string) float64 {
	if fw := e.frameworks[fwID]; fw != nil {
		return e.dominant(fw.scalars)
	}
	return 0
}

// RoleShare is a role's dominant share, over all its frameworks, divided
// by its weight.
func (e *Engine) RoleShare(role string) float64 {
	sum := map[string]float64{}
	for _, fw := range e.frameworks {
		if fw.role == role {
			for n, v := range fw.scalars {
				sum[n] += v
			}
		}
	}
	return e.dominant(sum) / e.Weight(role)
}

// Role describes a role for /master/roles.
type Role struct {
	Name       string
	Weight     float64
	Frameworks []string        // ids, sorted
	Offered    mesos.Resources // in outstanding offers
	Allocated  mesos.Resources // used by tasks
}

// Roles lists the roles that have a framework or a configured weight, by
// name.
func (e *Engine) Roles() []Role {
	byName := map[string]*Role{}
	get := func(name string) *Role {
		r := byName[name]
		if r == nil {
			r = &Role{Name: name, Weight: e.Weight(name), Frameworks: []string{}}
			byName[name] = r
		}
		return r
	}
	for name := range e.cfg.Weights {
		get(name)
	}
	for _, fw := range e.frameworks {
		r := get(fw.role)
		r.Frameworks = append(r.Frameworks, fw.id)
		for _, res := range fw.alloc {
			r.Allocated = r.Allocated.Plus(res...)
		}
	}
	for _, o := range e.offers {
		if fw := e.frameworks[o.Framework]; fw != nil {
			r := get(fw.role)
			r.Offered = r.Offered.Plus(o.Resources...)
			r.Allocated = r.Allocated.Minus(o.Resources...)
		}
	}
	out := make([]Role, 0, len(byName))
	for _, r := range byName {
		sort.Strings(r.Frameworks)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func addScalars(m map[string]float64, res mesos.Resources) {
	for _, r := range res {
		if r.Scalar != nil {
			m[r.Name] += r.Scalar.Value
		}
	}
}

func isEmpty(rs mesos.Resources) bool {
	for i := range rs {
		if !rs[i].IsEmpty() {
			return false
		}
	}
	return true
}

func sortOffers(os []Offer) {
	sort.Slice(os, func(i, j int) bool {
		if !os[i].Created.Equal(os[j].Created) {
			return os[i].Created.Before(os[j].Created)
		}
		return offerSeq(os[i].ID) < offerSeq(os[j].ID)
	})
}

// offerSeq is the counter at the end of an offer id.
func offerSeq(id string) int {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(id[i:])
	return n
}
