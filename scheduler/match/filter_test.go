package match

import (
	"reflect"
	"testing"
	"time"
)

var (
	t0   = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	www  = JobKey{Role: "www", Environment: "prod", Name: "hello"}
	base = Offer{
		ID: "o1", AgentID: "a1", Hostname: "h1",
		Attributes: map[string][]string{"rack": {"r1"}},
		CPUs:       4, MemMB: 4096, DiskMB: 8192,
		Ports: []Range{{31000, 31009}},
	}
	small = Request{TaskID: "t1", Job: www, CPUs: 1, MemMB: 128, DiskMB: 128, PortNames: []string{"http"}}
)

func offerWith(mod func(*Offer)) Offer {
	o := base
	o.Attributes = map[string][]string{"rack": {"r1"}}
	if mod != nil {
		mod(&o)
	}
	return o
}

func requestWith(constraints map[string]string, mod func(*Request)) Request {
	r := small
	cs, err := ParseConstraints(constraints)
	if err != nil {
		panic(err)
	}
	r.Constraints = cs
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestFilter(t *testing.T) {
	m := &Matcher{Overhead: AuroraExecutorOverhead, Now: t0, UnavailabilityThreshold: DefaultUnavailabilityThreshold}
	oneOnH1 := NewAttributeAggregate([]Placed{{Hostname: "h1", Attributes: map[string][]string{"rack": {"r1"}}}})
	tests := []struct {
		name  string
		offer Offer
		req   Request
		agg   *AttributeAggregate
		want  []string
	}{
		{"fits", base, small, nil, nil},
		{"fits exactly with overhead", offerWith(func(o *Offer) { o.CPUs, o.MemMB, o.DiskMB, o.Ports = 1.25, 256, 128, []Range{{5, 5}} }), small, nil, nil},
		{"cpu short by the overhead", offerWith(func(o *Offer) { o.CPUs = 1.2 }), small, nil, []string{"Insufficient: CPU"}},
		{"ram", offerWith(func(o *Offer) { o.MemMB = 255 }), small, nil, []string{"Insufficient: RAM"}},
		{"disk", offerWith(func(o *Offer) { o.DiskMB = 100 }), small, nil, []string{"Insufficient: disk"}},
		{"ports", offerWith(func(o *Offer) { o.Ports = nil }), small, nil, []string{"Insufficient: ports"}},
		{"ports counted by distinct name", offerWith(func(o *Offer) { o.Ports = []Range{{1, 2}} }),
			requestWith(nil, func(r *Request) { r.PortNames = []string{"http", "admin", "http", "admin"} }), nil, nil},
		{"all resources, in order", offerWith(func(o *Offer) { o.CPUs, o.MemMB, o.DiskMB, o.Ports = 0.5, 10, 10, nil }), small, nil,
			[]string{"Insufficient: CPU", "Insufficient: RAM", "Insufficient: disk", "Insufficient: ports"}},
		{"value constraint", base, requestWith(map[string]string{"rack": "r2"}, nil), nil, []string{"Constraint not satisfied: rack"}},
		{"value constraint any of", base, requestWith(map[string]string{"rack": "r2,r1"}, nil), nil, nil},
		{"value constraint on missing attribute", base, requestWith(map[string]string{"zone": "z1"}, nil), nil, []string{"Constraint not satisfied: zone"}},
		{"negated value matches", base, requestWith(map[string]string{"rack": "!r1"}, nil), nil, []string{"Constraint not satisfied: rack"}},
		{"negated value does not match", base, requestWith(map[string]string{"rack": "!r2"}, nil), nil, nil},
		{"negated value on missing attribute", base, requestWith(map[string]string{"zone": "!z1"}, nil), nil, nil},
		{"implied host attribute", base, requestWith(map[string]string{"host": "h1"}, nil), nil, nil},
		{"declared host attribute wins", offerWith(func(o *Offer) { o.Attributes["host"] = []string{"h1.example"} }),
			requestWith(map[string]string{"host": "h1"}, nil), nil, []string{"Constraint not satisfied: host"}},
		{"limit free", base, requestWith(map[string]string{"host": "limit:1"}, nil), nil, nil},
		{"limit reached", base, requestWith(map[string]string{"host": "limit:1"}, nil), oneOnH1, []string{"Limit not satisfied: host"}},
		{"limit not reached", base, requestWith(map[string]string{"rack": "limit:2"}, nil), oneOnH1, nil},
		{"limit on missing attribute", base, requestWith(map[string]string{"zone": "limit:1"}, nil), nil, []string{"Constraint not satisfied: zone"}},
		{"value constraints first", base, requestWith(map[string]string{"host": "limit:1", "zone": "z1"}, nil), oneOnH1, []string{"Constraint not satisfied: zone"}},
		{"only the first constraint", base, requestWith(map[string]string{"rack": "r9", "zone": "z1"}, nil), nil, []string{"Constraint not satisfied: rack"}},
		{"constraint before resources", offerWith(func(o *Offer) { o.CPUs = 0.1 }), requestWith(map[string]string{"rack": "r2"}, nil), nil, []string{"Constraint not satisfied: rack"}},
		{"scheduled maintenance fits", offerWith(func(o *Offer) { o.Maintenance = ModeScheduled }), small, nil, nil},
		{"draining", offerWith(func(o *Offer) { o.Maintenance = ModeDraining }), small, nil, []string{"Host draining for maintenance"}},
		{"drained", offerWith(func(o *Offer) { o.Maintenance = ModeDrained }), small, nil, []string{"Host drained for maintenance"}},
		{"maintenance before constraints", offerWith(func(o *Offer) { o.Maintenance = ModeDraining }), requestWith(map[string]string{"rack": "r2"}, nil), nil, []string{"Host draining for maintenance"}},
		{"mesos maintenance within threshold", offerWith(func(o *Offer) { o.UnavailabilityStart = t0.Add(5 * time.Minute) }), small, nil, []string{"Host draining for maintenance"}},
		{"mesos maintenance later", offerWith(func(o *Offer) { o.UnavailabilityStart = t0.Add(7 * time.Minute) }), small, nil, nil},
		{"dedicated host, plain task", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"www/db"} }), small, nil, []string{"Host is dedicated"}},
		{"dedicated before maintenance", offerWith(func(o *Offer) {
			o.Attributes["dedicated"] = []string{"www/db"}
			o.Maintenance = ModeDrained
		}), small, nil, []string{"Host is dedicated"}},
		{"dedicated host, own role", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"www/db"} }), requestWith(map[string]string{"dedicated": "www/db"}, nil), nil, nil},
		{"dedicated host, any role", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"*/db"} }), requestWith(map[string]string{"dedicated": "*/db"}, nil), nil, nil},
		{"dedicated host, other group", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"www/db"} }), requestWith(map[string]string{"dedicated": "www/cache"}, nil), nil, []string{"Constraint not satisfied: dedicated"}},
		{"dedicated host, role not allowed", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"ads/db"} }), requestWith(map[string]string{"dedicated": "ads/db"}, nil), nil, []string{"Constraint not satisfied: dedicated"}},
		{"dedicated host, limit as dedicated constraint", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"www/db"} }),
			requestWith(nil, func(r *Request) { r.Constraints = []Constraint{{Name: "dedicated", Limit: 5}} }), nil, []string{"Constraint not satisfied: dedicated"}},
		{"dedicated task, shared host", base, requestWith(map[string]string{"dedicated": "www/db"}, nil), nil, []string{"Constraint not satisfied: dedicated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range m.Filter(tt.offer, tt.req, tt.agg) {
				got = append(got, v.Reason)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("vetoes %q, want %q", got, tt.want)
			}
			// The fast path of Assign must agree with Filter.
			r := m.prepare(&tt.req)
			h := m.newHost(&tt.offer)
			if ok := fits(h, &r, tt.agg); ok != (len(tt.want) == 0) {
				t.Fatalf("fast path says fits=%v", ok)
			}
			// So must the scoring of the nearest fit.
			if got, want := m.vetoes(h, &r, tt.agg, nil), totalScore(m.Filter(tt.offer, tt.req, tt.agg)); got != want {
				t.Fatalf("score %d, want %d", got, want)
			}
		})
	}
}

func TestVetoTypesAndScores(t *testing.T) {
	m := &Matcher{}
	tests := []struct {
		name   string
		offer  Offer
		req    Request
		agg    *AttributeAggregate
		want   Veto
		static bool
	}{
		{"cpu scaled by 16 cores", offerWith(func(o *Offer) { o.CPUs = 0.5 }), requestWith(nil, func(r *Request) { r.CPUs = 2.5 }), nil,
			Veto{InsufficientResources, "Insufficient: CPU", 125}, true},
		{"cpu capped", offerWith(func(o *Offer) { o.CPUs = 0.5 }), requestWith(nil, func(r *Request) { r.CPUs = 100 }), nil,
			Veto{InsufficientResources, "Insufficient: CPU", 1000}, true},
		{"ram scaled by 24 GB", offerWith(func(o *Offer) { o.MemMB = 128 }), requestWith(nil, func(r *Request) { r.MemMB = 128 + 12*1024 }), nil,
			Veto{InsufficientResources, "Insufficient: RAM", 500}, true},
		{"ports scaled by 1000", offerWith(func(o *Offer) { o.Ports = nil }), small, nil,
			Veto{InsufficientResources, "Insufficient: ports", 1}, true},
		{"constraint", base, requestWith(map[string]string{"rack": "r2"}, nil), nil,
			Veto{ConstraintMismatch, "Constraint not satisfied: rack", 10_000}, true},
		{"limit", base, requestWith(map[string]string{"rack": "limit:1"}, nil), NewAttributeAggregate([]Placed{{Hostname: "x", Attributes: map[string][]string{"rack": {"r1"}}}}),
			Veto{LimitNotSatisfied, "Limit not satisfied: rack", 10_000}, false},
		{"maintenance", offerWith(func(o *Offer) { o.Maintenance = ModeDrained }), small, nil,
			Veto{Maintenance, "Host drained for maintenance", 100_000}, true},
		{"dedicated", offerWith(func(o *Offer) { o.Attributes["dedicated"] = []string{"x/y"} }), small, nil,
			Veto{DedicatedMismatch, "Host is dedicated", 1_000_000}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Filter(tt.offer, tt.req, tt.agg)
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got[0].Type.Static() != tt.static {
				t.Fatalf("%v static=%v", got[0].Type, got[0].Type.Static())
			}
		})
	}
	if s := DedicatedMismatch.String(); s != "DEDICATED_CONSTRAINT_MISMATCH" {
		t.Fatalf("String() = %q", s)
	}
}

func TestAttributeAggregate(t *testing.T) {
	a := NewAttributeAggregate([]Placed{
		{Hostname: "h1", Attributes: map[string][]string{"rack": {"r1", "r1"}}},
		{Hostname: "h2", Attributes: map[string][]string{"rack": {"r1"}, "host": {"h2.example"}}},
	})
	a.Add("h1", map[string][]string{"rack": {"r2"}})
	for _, c := range []struct {
		name, value string
		want        int
	}{
		{"host", "h1", 2}, {"host", "h2", 0}, {"host", "h2.example", 1},
		{"rack", "r1", 2}, {"rack", "r2", 1}, {"zone", "z", 0},
	} {
		if got := a.Count(c.name, c.value); got != c.want {
			t.Errorf("Count(%s, %s) = %d, want %d", c.name, c.value, got, c.want)
		}
	}
	var empty *AttributeAggregate
	if empty.Count("host", "h1") != 0 {
		t.Fatal("nil aggregate not empty")
	}
}
