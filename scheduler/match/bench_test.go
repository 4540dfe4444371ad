package match

import (
	"fmt"
	"testing"
)

// benchInput builds a cluster of nAgents agents (32 CPUs, 128 GB, ports
// 31000-32000, four racks; every 20th dedicated to "*/batch", every 25th
// draining, the 10th in SCHEDULED maintenance) and nTasks pending tasks of
// 0.1 CPU, 64 MB, 64 MB disk and one port, in jobs of ten instances: a quarter
// with {"host": "limit:1"} and one instance already running, a quarter pinned
// to racks r1 and r2, the rest free; every 17th job is dedicated to "*/batch"
// and every 23rd asks for a rack that does not exist.
func benchInput(nAgents, nTasks int) ([]Offer, []Request, map[JobKey][]Placed) {
	offers := make([]Offer, 0, nAgents)
	for i := 1; i <= nAgents; i++ {
		o := Offer{
			ID: fmt.Sprintf("o%03d", i), AgentID: fmt.Sprintf("a%03d", i), Hostname: fmt.Sprintf("h%03d", i),
			Attributes: map[string][]string{"rack": {fmt.Sprintf("r%d", i%4+1)}},
			CPUs:       32, MemMB: 128 * 1024, DiskMB: 1 << 20, Ports: []Range{{31000, 32000}},
		}
		switch {
		case i%20 == 0:
			o.Attributes["dedicated"] = []string{"*/batch"}
		case i%25 == 0:
			o.Maintenance = ModeDraining
		case i == 10:
			o.Maintenance = ModeScheduled
		}
		offers = append(offers, o)
	}
	var reqs []Request
	existing := map[JobKey][]Placed{}
	for j := 0; len(reqs) < nTasks; j++ {
		job := JobKey{Role: "role", Environment: "prod", Name: fmt.Sprintf("job%d", j)}
		var cs []Constraint
		switch {
		case j%23 == 22:
			cs = []Constraint{{Name: "rack", Values: []string{"r9"}}}
		case j%17 == 16:
			cs = []Constraint{{Name: "dedicated", Values: []string{"*/batch"}}}
		case j%4 == 0:
			cs = []Constraint{{Name: "host", Limit: 1}}
			existing[job] = []Placed{{Hostname: fmt.Sprintf("h%03d", j%nAgents+1)}}
		case j%4 == 1:
			cs = []Constraint{{Name: "rack", Values: []string{"r1", "r2"}}}
		}
		for i := 0; i < 10 && len(reqs) < nTasks; i++ {
			reqs = append(reqs, Request{
				TaskID: fmt.Sprintf("role-prod-job%d-%d", j, i), Job: job, Instance: i,
				CPUs: 0.1, MemMB: 64, DiskMB: 64, PortNames: []string{"http"}, Constraints: cs,
			})
		}
	}
	return offers, reqs, existing
}

func benchAssign(b *testing.B, offers []Offer, reqs []Request, existing map[JobKey][]Placed) {
	m := NewMatcher(t0)
	assigned := 0
	for b.Loop() {
		as, _, _ := m.Assign(offers, reqs, existing)
		assigned += len(as)
	}
	b.ReportMetric(float64(assigned)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(assigned)/float64(b.N), "assigned/op")
}

// BenchmarkAssign10k places 10,000 tasks, a mix with and without limit,
// value and dedicated constraints, on 100 agents.
func BenchmarkAssign10k(b *testing.B) {
	offers, reqs, existing := benchInput(100, 10_000)
	benchAssign(b, offers, reqs, existing)
}

// BenchmarkAssign10kNoConstraints is the same round with every constraint
// removed and every agent plain: Assign's cost without constraint checks.
func BenchmarkAssign10kNoConstraints(b *testing.B) {
	offers, reqs, _ := benchInput(100, 10_000)
	for i := range offers {
		offers[i].Attributes = map[string][]string{"rack": offers[i].Attributes["rack"]}
		offers[i].Maintenance = ""
	}
	for i := range reqs {
		reqs[i].Constraints = nil
	}
	benchAssign(b, offers, reqs, nil)
}

// BenchmarkResourceArithmetic10k is the floor: first-fit of the same 10,000
// tasks on the same 100 agents with nothing but the CPU, memory, disk and
// port-count arithmetic.
func BenchmarkResourceArithmetic10k(b *testing.B) {
	offers, reqs, _ := benchInput(100, 10_000)
	type free struct{ cpus, mem, disk, ports float64 }
	assigned := 0
	for b.Loop() {
		hosts := make([]free, len(offers))
		for i, o := range offers {
			hosts[i] = free{o.CPUs, o.MemMB, o.DiskMB, float64(countPorts(o.Ports))}
		}
		for i := range reqs {
			r := &reqs[i]
			cpus, mem, ports := r.CPUs+DefaultOverhead.CPUs, r.MemMB+DefaultOverhead.MemMB, float64(len(r.PortNames))
			for k := range hosts {
				h := &hosts[k]
				if cpus <= h.cpus && mem <= h.mem && r.DiskMB <= h.disk && ports <= h.ports {
					h.cpus -= cpus
					h.mem -= mem
					h.disk -= r.DiskMB
					h.ports -= ports
					assigned++
					break
				}
			}
		}
	}
	b.ReportMetric(float64(assigned)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(assigned)/float64(b.N), "assigned/op")
}
