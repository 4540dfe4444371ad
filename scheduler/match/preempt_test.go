package match

import (
	"reflect"
	"testing"
)

func TestMayPreempt(t *testing.T) {
	prod := func(role string, prio int) Rank { return Rank{Role: role, Priority: prio} }
	nonProd := func(role string, prio int) Rank { return Rank{Role: role, Preemptible: true, Priority: prio} }
	tests := []struct {
		name            string
		pending, victim Rank
		want            bool
	}{
		{"production preempts preemptible of its role", prod("www", 0), nonProd("www", 0), true},
		{"production preempts preemptible of another role", prod("www", 0), nonProd("batch", 0), true},
		{"production preempts preemptible of a higher priority", prod("www", 0), nonProd("www", 100), true},
		{"production does not preempt production of its priority", prod("www", 1), prod("www", 1), false},
		{"production preempts lower-priority production of its role", prod("www", 2), prod("www", 1), true},
		{"production does not preempt lower-priority production of another role", prod("www", 2), prod("batch", 1), false},
		{"preemptible preempts lower priority of its role", nonProd("www", 5), nonProd("www", 4), true},
		{"preemptible does not preempt equal priority", nonProd("www", 5), nonProd("www", 5), false},
		{"preemptible does not preempt higher priority", nonProd("www", 5), nonProd("www", 6), false},
		{"preemptible does not preempt across roles", nonProd("www", 5), nonProd("batch", 0), false},
		{"preemptible never preempts production", nonProd("www", 100), prod("www", 0), false},
		{"preemptible never preempts production of another role", nonProd("www", 100), prod("batch", 0), false},
	}
	for _, tc := range tests {
		if got := tc.pending.MayPreempt(tc.victim); got != tc.want {
			t.Errorf("%s: MayPreempt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestVictims(t *testing.T) {
	m := &Matcher{Overhead: Overhead{CPUs: 0.25, MemMB: 128}, Now: t0, UnavailabilityThreshold: DefaultUnavailabilityThreshold}
	prod := Rank{Role: "www"}
	empty := Offer{AgentID: "a1", Hostname: "h1", Attributes: map[string][]string{"rack": {"r1"}}}
	slack := func(mod func(*Offer)) Offer {
		o := empty
		mod(&o)
		return o
	}
	// req needs 1.25 CPU and 256 MB with the overhead.
	req := Request{TaskID: "p", Job: www, CPUs: 1, MemMB: 128}
	withReq := func(mod func(*Request)) Request {
		r := req
		mod(&r)
		return r
	}
	victim := func(id, role string, preemptible bool, prio int, cpus, mem float64, ports ...uint64) Victim {
		return Victim{TaskID: id, Rank: Rank{Role: role, Preemptible: preemptible, Priority: prio}, CPUs: cpus, MemMB: mem, Ports: ports}
	}
	// Preemptible tasks of 0.5 CPU and 64 MB: 0.75 CPU and 192 MB with the
	// overhead; two make room for req.
	small := func(id string, prio int, ports ...uint64) Victim {
		return victim(id, "batch", true, prio, 0.5, 64, ports...)
	}
	tests := []struct {
		name       string
		slack      Offer
		req        Request
		pending    Rank
		candidates []Victim
		agg        *AttributeAggregate
		want       []string
	}{
		{"production preempts preemptible tasks of another role, two of three",
			empty, req, prod, []Victim{small("b0", 0), small("b1", 0), small("b2", 0)}, nil, []string{"b0", "b1"}},
		{"the lowest priorities go first among equals",
			empty, req, prod, []Victim{small("b0", 3), small("b1", 1), small("b2", 2)}, nil, []string{"b1", "b2"}},
		{"the largest goes first: one victim instead of two",
			empty, req, prod, []Victim{small("b0", 0), small("b1", 0), victim("big", "batch", true, 9, 2, 512)}, nil, []string{"big"}},
		{"slack counts: one victim is enough",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 0.5, 64 }), req, prod, []Victim{small("b0", 0), small("b1", 0)}, nil, []string{"b0"}},
		{"fits without preemption: none",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 2, 512 }), req, prod, []Victim{small("b0", 0)}, nil, nil},
		{"not enough even after preempting every eligible task",
			empty, req, prod, []Victim{small("b0", 0), victim("p0", "www", false, 0, 3, 1024)}, nil, nil},
		{"production tasks are not preempted for a production task of the same priority",
			empty, req, prod, []Victim{victim("p0", "www", false, 0, 1, 128), victim("p1", "www", false, 0, 1, 128)}, nil, nil},
		{"within a role and tier, higher priority preempts lower",
			empty, req, Rank{Role: "www", Priority: 5}, []Victim{victim("p0", "www", false, 5, 1, 128), victim("p1", "www", false, 4, 1, 128)}, nil, []string{"p1"}},
		{"never across roles among production tasks",
			empty, req, Rank{Role: "www", Priority: 5}, []Victim{victim("p0", "other", false, 0, 1, 128)}, nil, nil},
		{"a preemptible task preempts lower priorities of its role only",
			empty, req, Rank{Role: "batch", Preemptible: true, Priority: 1},
			[]Victim{victim("x0", "other", true, 0, 1, 128), victim("b0", "batch", true, 0, 1, 128)}, nil, []string{"b0"}},
		{"a preemptible task never preempts production",
			empty, req, Rank{Role: "www", Preemptible: true, Priority: 100}, []Victim{victim("p0", "www", false, 0, 4, 1024)}, nil, nil},
		{"revocable victims free no CPU",
			empty, req, prod, []Victim{{TaskID: "r0", Rank: Rank{Role: "batch", Preemptible: true}, Revocable: true, CPUs: 4, MemMB: 1024}}, nil, nil},
		{"revocable victims free RAM",
			slack(func(o *Offer) { o.CPUs = 2 }), req, prod, []Victim{{TaskID: "r0", Rank: Rank{Role: "batch", Preemptible: true}, Revocable: true, CPUs: 4, MemMB: 1024}}, nil, []string{"r0"}},
		{"executor overhead counts: one victim frees 0.75 CPU, not 0.5",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 0.5, 64 }), withReq(func(r *Request) { r.CPUs = 1 }), prod, []Victim{small("b0", 0)}, nil, []string{"b0"}},
		{"disk",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 4, 4096 }), withReq(func(r *Request) { r.DiskMB = 100 }), prod,
			[]Victim{small("b0", 0), {TaskID: "d0", Rank: Rank{Role: "batch", Preemptible: true}, DiskMB: 100}}, nil, []string{"d0"}},
		{"ports: the victim holding a port goes, even though it is smaller",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 4, 4096 }), withReq(func(r *Request) { r.PortNames = []string{"http"} }), prod,
			[]Victim{victim("big", "batch", true, 0, 2, 512), small("b0", 0, 31000)}, nil, []string{"b0"}},
		{"ports: freed ports add to the offer's",
			slack(func(o *Offer) { o.CPUs, o.MemMB, o.Ports = 4, 4096, []Range{{31005, 31005}} }), withReq(func(r *Request) { r.PortNames = []string{"http", "admin"} }), prod,
			[]Victim{small("b0", 0, 31000), small("b1", 0)}, nil, []string{"b0"}},
		{"ports: not enough even after preemption",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 4, 4096 }), withReq(func(r *Request) { r.PortNames = []string{"http", "admin"} }), prod,
			[]Victim{small("b0", 0, 31000)}, nil, nil},
		{"ports: a larger victim added first is spared when a later one is needed anyway",
			slack(func(o *Offer) { o.CPUs, o.MemMB = 0.5, 64 }), withReq(func(r *Request) { r.PortNames = []string{"http"} }), prod,
			[]Victim{victim("big", "batch", true, 0, 2, 512), small("b0", 1, 31000)}, nil, []string{"b0"}},
		{"a value constraint the host does not meet: no preemption",
			empty, withReq(func(r *Request) { r.Constraints = []Constraint{{Name: "rack", Values: []string{"r2"}}} }), prod,
			[]Victim{small("b0", 0), small("b1", 0)}, nil, nil},
		{"a value constraint the host meets",
			empty, withReq(func(r *Request) { r.Constraints = []Constraint{{Name: "rack", Values: []string{"r1"}}} }), prod,
			[]Victim{small("b0", 0), small("b1", 0)}, nil, []string{"b0", "b1"}},
		{"a limit constraint already reached on the host: no preemption",
			empty, withReq(func(r *Request) { r.Constraints = []Constraint{{Name: "host", Limit: 1}} }), prod,
			[]Victim{small("b0", 0), small("b1", 0)}, NewAttributeAggregate([]Placed{{Hostname: "h1"}}), nil},
		{"a dedicated host takes no preemptor without the constraint",
			slack(func(o *Offer) { o.Attributes = map[string][]string{"dedicated": {"batch/x"}} }), req, prod,
			[]Victim{small("b0", 0), small("b1", 0)}, nil, nil},
		{"a draining host: no preemption",
			slack(func(o *Offer) { o.Maintenance = ModeDraining }), req, prod, []Victim{small("b0", 0), small("b1", 0)}, nil, nil},
		{"no candidates", empty, req, prod, nil, nil, nil},
	}
	for _, tc := range tests {
		got := m.Victims(tc.slack, tc.req, tc.pending, tc.candidates, tc.agg)
		var ids []string
		for _, v := range got {
			ids = append(ids, v.TaskID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: victims %v, want %v", tc.name, ids, tc.want)
		}
	}
}

// Victims does not modify its inputs.
func TestVictimsKeepsInputs(t *testing.T) {
	m := NewMatcher(t0)
	cands := []Victim{{TaskID: "b", Rank: Rank{Preemptible: true}, CPUs: 1, MemMB: 10, Ports: []uint64{5}}, {TaskID: "a", Rank: Rank{Preemptible: true}, CPUs: 2, MemMB: 10}}
	slack := Offer{Hostname: "h", Ports: []Range{{7, 7}}}
	before := []string{cands[0].TaskID, cands[1].TaskID}
	m.Victims(slack, Request{TaskID: "p", CPUs: 2.5, PortNames: []string{"x", "y"}}, Rank{}, cands, nil)
	if cands[0].TaskID != before[0] || cands[1].TaskID != before[1] || len(slack.Ports) != 1 || slack.Ports[0] != (Range{7, 7}) {
		t.Errorf("inputs changed: %+v %+v", cands, slack)
	}
}
