package match

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func agents(n int, mod func(i int, o *Offer)) []Offer {
	var out []Offer
	for i := 1; i <= n; i++ {
		o := Offer{
			ID: fmt.Sprintf("o%d", i), AgentID: fmt.Sprintf("a%d", i), Hostname: fmt.Sprintf("h%d", i),
			Attributes: map[string][]string{"rack": {fmt.Sprintf("r%d", (i-1)%2+1)}},
			CPUs:       8, MemMB: 8192, DiskMB: 8192, Ports: []Range{{31000, 31099}},
		}
		if mod != nil {
			mod(i, &o)
		}
		out = append(out, o)
	}
	return out
}

func instances(job JobKey, n int, constraints map[string]string, mod func(*Request)) []Request {
	cs, err := ParseConstraints(constraints)
	if err != nil {
		panic(err)
	}
	var out []Request
	for i := range n {
		r := Request{
			TaskID: fmt.Sprintf("%s-%s-%s-%d", job.Role, job.Environment, job.Name, i), Job: job, Instance: i,
			CPUs: 1, MemMB: 128, DiskMB: 128, PortNames: []string{"http"}, Constraints: cs,
		}
		if mod != nil {
			mod(&r)
		}
		out = append(out, r)
	}
	return out
}

// placement maps task ids to hostnames.
func placement(as []Assignment) map[string]string {
	out := map[string]string{}
	for _, a := range as {
		out[a.TaskID] = a.Hostname
	}
	return out
}

func reasons(vs []Veto) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Reason)
	}
	return out
}

func TestAssignLimitHostSpreads(t *testing.T) {
	m := NewMatcher(t0)
	as, remaining, vetoes := m.Assign(agents(3, nil), instances(www, 4, map[string]string{"host": "limit:1"}, nil), nil)
	want := map[string]string{"www-prod-hello-0": "h1", "www-prod-hello-1": "h2", "www-prod-hello-2": "h3"}
	if got := placement(as); !reflect.DeepEqual(got, want) {
		t.Fatalf("placement %v, want %v", got, want)
	}
	if len(remaining) != 0 {
		t.Fatalf("remaining %v", remaining)
	}
	if got := reasons(vetoes["www-prod-hello-3"]); !reflect.DeepEqual(got, []string{"Limit not satisfied: host"}) {
		t.Fatalf("vetoes of the 4th: %q", got)
	}
	if len(vetoes) != 1 {
		t.Fatalf("vetoes %v", vetoes)
	}
}

func TestAssignLimitCountsExisting(t *testing.T) {
	m := NewMatcher(t0)
	existing := map[JobKey][]Placed{
		www: {{Hostname: "h1", Attributes: map[string][]string{"rack": {"r1"}}}},
		{Role: "www", Environment: "prod", Name: "other"}: {{Hostname: "h2"}},
	}
	as, _, vetoes := m.Assign(agents(3, nil), instances(www, 3, map[string]string{"host": "limit:1"}, nil), existing)
	want := map[string]string{"www-prod-hello-0": "h2", "www-prod-hello-1": "h3"}
	if got := placement(as); !reflect.DeepEqual(got, want) {
		t.Fatalf("placement %v, want %v", got, want)
	}
	if got := reasons(vetoes["www-prod-hello-2"]); !reflect.DeepEqual(got, []string{"Limit not satisfied: host"}) {
		t.Fatalf("vetoes %q", got)
	}
}

func TestAssignRackLimit(t *testing.T) {
	// limit:2 per rack over 4 agents in 2 racks: 4 tasks, 2 per rack.
	m := NewMatcher(t0)
	as, _, vetoes := m.Assign(agents(4, nil), instances(www, 5, map[string]string{"rack": "limit:2"}, nil), nil)
	racks := map[string]int{}
	for _, a := range as {
		racks[map[string]string{"h1": "r1", "h2": "r2", "h3": "r1", "h4": "r2"}[a.Hostname]]++
	}
	if !reflect.DeepEqual(racks, map[string]int{"r1": 2, "r2": 2}) {
		t.Fatalf("per rack %v (%v)", racks, placement(as))
	}
	if got := reasons(vetoes["www-prod-hello-4"]); !reflect.DeepEqual(got, []string{"Limit not satisfied: rack"}) {
		t.Fatalf("vetoes %q", got)
	}
}

func TestAssignValueConstraintPins(t *testing.T) {
	m := NewMatcher(t0)
	as, remaining, vetoes := m.Assign(agents(4, nil), instances(www, 6, map[string]string{"rack": "r1"}, func(r *Request) { r.CPUs = 2 }), nil)
	if len(as) != 6 || len(vetoes) != 0 {
		t.Fatalf("assigned %d, vetoes %v", len(as), vetoes)
	}
	for _, a := range as {
		if a.Hostname != "h1" && a.Hostname != "h3" {
			t.Fatalf("%s on %s, which is not in rack r1", a.TaskID, a.Hostname)
		}
	}
	// 3 tasks of 2.01 CPUs fit in 8: h1 takes 3, h3 the other 3.
	if got := placement(as); got["www-prod-hello-2"] != "h1" || got["www-prod-hello-3"] != "h3" {
		t.Fatalf("placement %v", got)
	}
	var ids []string
	for _, o := range remaining {
		ids = append(ids, o.ID)
	}
	if !reflect.DeepEqual(ids, []string{"o2", "o4"}) {
		t.Fatalf("remaining %v", ids)
	}
}

func TestAssignPacksOneOfferWithDistinctPorts(t *testing.T) {
	m := NewMatcher(t0)
	offers := agents(1, func(_ int, o *Offer) { o.Ports = []Range{{31005, 31009}, {31000, 31002}} })
	reqs := instances(www, 4, nil, func(r *Request) { r.CPUs = 0.5; r.PortNames = []string{"http", "admin"} })
	as, remaining, vetoes := m.Assign(offers, reqs, nil)
	if len(as) != 4 {
		t.Fatalf("assigned %d: %v", len(as), vetoes)
	}
	seen := map[int]bool{}
	var got []string
	for _, a := range as {
		if a.OfferID != "o1" || a.AgentID != "a1" || a.Hostname != "h1" {
			t.Fatalf("assignment %+v", a)
		}
		for name, p := range a.Ports {
			if seen[p] {
				t.Fatalf("port %d given twice", p)
			}
			seen[p] = true
			got = append(got, fmt.Sprintf("%s:%s=%d", a.TaskID[len(a.TaskID)-1:], name, p))
		}
	}
	slices.Sort(got)
	want := []string{"0:admin=31000", "0:http=31001", "1:admin=31002", "1:http=31005", "2:admin=31006", "2:http=31007", "3:admin=31008", "3:http=31009"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ports %v, want %v", got, want)
	}
	if len(remaining) != 0 {
		t.Fatalf("a used offer is not remaining: %v", remaining)
	}
	// The input is untouched.
	if !reflect.DeepEqual(offers[0].Ports, []Range{{31005, 31009}, {31000, 31002}}) || offers[0].CPUs != 8 {
		t.Fatalf("offer modified: %+v", offers[0])
	}
}

func TestAssignPortExhaustion(t *testing.T) {
	m := NewMatcher(t0)
	offers := agents(1, func(_ int, o *Offer) { o.Ports = []Range{{31000, 31002}} })
	reqs := instances(www, 2, nil, func(r *Request) { r.PortNames = []string{"http", "admin"} })
	as, _, vetoes := m.Assign(offers, reqs, nil)
	if len(as) != 1 || as[0].TaskID != "www-prod-hello-0" {
		t.Fatalf("assignments %+v", as)
	}
	if got := reasons(vetoes["www-prod-hello-1"]); !reflect.DeepEqual(got, []string{"Insufficient: ports"}) {
		t.Fatalf("vetoes %q", got)
	}
}

func TestAssignPacksUntilResourcesRunOut(t *testing.T) {
	m := &Matcher{Overhead: AuroraExecutorOverhead}
	// 8 CPUs hold six tasks of 1.25 (7.5); the seventh is short by 0.75.
	as, _, vetoes := m.Assign(agents(1, nil), instances(www, 7, nil, nil), nil)
	if len(as) != 6 {
		t.Fatalf("assigned %d", len(as))
	}
	v := vetoes["www-prod-hello-6"]
	if len(v) != 1 || v[0].Reason != "Insufficient: CPU" || v[0].Score != 46 {
		t.Fatalf("vetoes %+v", v)
	}
}

func TestAssignTenthsDoNotDrift(t *testing.T) {
	m := &Matcher{}
	// 0.1 CPU ten times is exactly one CPU.
	as, _, _ := m.Assign(agents(1, func(_ int, o *Offer) { o.CPUs = 1 }), instances(www, 11, nil, func(r *Request) {
		r.CPUs = 0.1
		r.PortNames = nil
	}), nil)
	if len(as) != 10 {
		t.Fatalf("assigned %d, want 10", len(as))
	}
}

func TestAssignMaintenance(t *testing.T) {
	m := NewMatcher(t0)
	modes := []MaintenanceMode{ModeDraining, ModeScheduled, ModeDrained, ""}
	offers := agents(4, func(i int, o *Offer) { o.Maintenance = modes[i-1]; o.CPUs = 2 })
	as, remaining, vetoes := m.Assign(offers, instances(www, 3, nil, nil), nil)
	// h4 (no maintenance) first, then h2 (SCHEDULED); never h1 or h3.
	want := map[string]string{"www-prod-hello-0": "h4", "www-prod-hello-1": "h2"}
	if got := placement(as); !reflect.DeepEqual(got, want) {
		t.Fatalf("placement %v, want %v", got, want)
	}
	// The nearest fit is a short offer, not a draining one.
	if got := reasons(vetoes["www-prod-hello-2"]); !reflect.DeepEqual(got, []string{"Insufficient: CPU"}) {
		t.Fatalf("vetoes %q", got)
	}
	if len(remaining) != 2 || remaining[0].ID != "o1" || remaining[1].ID != "o3" {
		t.Fatalf("remaining %v", remaining)
	}
	// With only a draining host, the veto says so.
	_, _, vetoes = m.Assign(offers[:1], instances(www, 1, nil, nil), nil)
	if got := reasons(vetoes["www-prod-hello-0"]); !reflect.DeepEqual(got, []string{"Host draining for maintenance"}) {
		t.Fatalf("vetoes %q", got)
	}
}

func TestAssignMesosMaintenanceOrder(t *testing.T) {
	m := NewMatcher(t0)
	starts := []int{60, 0, 120, 3}
	offers := agents(4, func(i int, o *Offer) {
		if s := starts[i-1]; s != 0 {
			o.UnavailabilityStart = t0.Add(time.Duration(s) * time.Minute)
		}
		o.CPUs = 1.5
	})
	as, _, vetoes := m.Assign(offers, instances(www, 4, nil, nil), nil)
	// No window first, then the latest window; h4's starts within 6 minutes.
	want := map[string]string{"www-prod-hello-0": "h2", "www-prod-hello-1": "h3", "www-prod-hello-2": "h1"}
	if got := placement(as); !reflect.DeepEqual(got, want) {
		t.Fatalf("placement %v, want %v", got, want)
	}
	if got := reasons(vetoes["www-prod-hello-3"]); !reflect.DeepEqual(got, []string{"Insufficient: CPU"}) {
		t.Fatalf("vetoes %q", got)
	}
}

func TestAssignDedicated(t *testing.T) {
	m := NewMatcher(t0)
	offers := agents(3, func(i int, o *Offer) {
		if i == 2 {
			o.Attributes["dedicated"] = []string{"www/db"}
		}
		o.CPUs = 1.5
	})
	db := JobKey{Role: "www", Environment: "prod", Name: "db"}
	ads := JobKey{Role: "ads", Environment: "prod", Name: "db"}
	var reqs []Request
	reqs = append(reqs, instances(db, 2, map[string]string{"dedicated": "www/db"}, nil)...)
	reqs = append(reqs, instances(www, 3, nil, nil)...)
	reqs = append(reqs, instances(ads, 1, map[string]string{"dedicated": "www/db"}, nil)...)
	as, _, vetoes := m.Assign(offers, reqs, nil)
	want := map[string]string{"www-prod-db-0": "h2", "www-prod-hello-0": "h1", "www-prod-hello-1": "h3"}
	if got := placement(as); !reflect.DeepEqual(got, want) {
		t.Fatalf("placement %v, want %v", got, want)
	}
	for id, want := range map[string]string{
		"www-prod-db-1":    "Insufficient: CPU",                   // h2 is full; h1 and h3 are not dedicated
		"www-prod-hello-2": "Insufficient: CPU",                   // h1 and h3 are full, h2 is dedicated
		"ads-prod-db-0":    "Constraint not satisfied: dedicated", // www's hosts are not for ads
	} {
		if got := reasons(vetoes[id]); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: vetoes %q, want %q", id, got, want)
		}
	}
}

func TestAssignNoOffers(t *testing.T) {
	m := NewMatcher(t0)
	// An offer without CPU is not tried.
	offers := agents(1, func(_ int, o *Offer) { o.CPUs = 0 })
	as, remaining, vetoes := m.Assign(offers, instances(www, 1, nil, nil), nil)
	if len(as) != 0 || len(remaining) != 1 {
		t.Fatalf("assignments %v remaining %v", as, remaining)
	}
	v, ok := vetoes["www-prod-hello-0"]
	if !ok || len(v) != 0 {
		t.Fatalf("vetoes %v, %v", v, ok)
	}
}

func TestAssignDuplicateTaskID(t *testing.T) {
	m := NewMatcher(t0)
	reqs := instances(www, 1, nil, nil)
	reqs = append(reqs, reqs[0])
	as, _, vetoes := m.Assign(agents(2, nil), reqs, nil)
	if len(as) != 1 || len(vetoes) != 0 {
		t.Fatalf("assignments %v vetoes %v", as, vetoes)
	}
}

func TestAssignDeterministic(t *testing.T) {
	offers, reqs, existing := benchInput(20, 500)
	for _, seed := range []uint64{0, 42} {
		m := NewMatcher(t0)
		m.PortSeed = seed
		as1, rem1, v1 := m.Assign(offers, reqs, existing)
		as2, rem2, v2 := m.Assign(offers, reqs, existing)
		if len(as1) == 0 || len(v1) == 0 {
			t.Fatalf("seed %d: %d assignments, %d vetoed: not a useful input", seed, len(as1), len(v1))
		}
		if !reflect.DeepEqual(as1, as2) || !reflect.DeepEqual(rem1, rem2) || !reflect.DeepEqual(v1, v2) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		// Ports are distinct per offer and within its ranges.
		used := map[string]bool{}
		for _, a := range as1 {
			for _, p := range a.Ports {
				key := fmt.Sprint(a.OfferID, p)
				if used[key] || p < 31000 || p > 32000 {
					t.Fatalf("seed %d: port %d on %s reused or out of range", seed, p, a.OfferID)
				}
				used[key] = true
			}
		}
	}
	// A seed changes the ports but not the placement.
	m := NewMatcher(t0)
	lowest, _, _ := m.Assign(offers, reqs, existing)
	m.PortSeed = 42
	seeded, _, _ := m.Assign(offers, reqs, existing)
	if !reflect.DeepEqual(placement(lowest), placement(seeded)) {
		t.Fatal("seeded ports changed the placement")
	}
	if reflect.DeepEqual(lowest, seeded) {
		t.Fatal("seeded ports are the lowest ones")
	}
}

func TestTakePort(t *testing.T) {
	h := &host{ports: normalizeRanges([]Range{{10, 12}, {20, 20}, {11, 14}, {9, 3}, {15, 15}})}
	h.nports = countPorts(h.ports)
	if !reflect.DeepEqual(h.ports, []Range{{10, 15}, {20, 20}}) || h.nports != 7 {
		t.Fatalf("normalized %v (%d)", h.ports, h.nports)
	}
	for _, c := range []struct {
		i, want uint64
		left    []Range
	}{
		{2, 12, []Range{{10, 11}, {13, 15}, {20, 20}}},
		{0, 10, []Range{{11, 11}, {13, 15}, {20, 20}}},
		{4, 20, []Range{{11, 11}, {13, 15}}},
		{3, 15, []Range{{11, 11}, {13, 14}}},
		{0, 11, []Range{{13, 14}}},
	} {
		if got := h.takePort(c.i); got != c.want || !reflect.DeepEqual(h.ports, c.left) {
			t.Fatalf("takePort(%d) = %d leaving %v, want %d leaving %v", c.i, got, h.ports, c.want, c.left)
		}
	}
	if h.nports != 2 {
		t.Fatalf("nports %d", h.nports)
	}
}
