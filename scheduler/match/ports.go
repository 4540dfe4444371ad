package match

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"
)

// normalizeRanges returns a new slice of the ranges sorted, with overlapping
// and adjacent ones merged and inverted ones (Begin > End) dropped.
func normalizeRanges(in []Range) []Range {
	out := make([]Range, 0, len(in))
	for _, r := range in {
		if r.Begin <= r.End {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Range) int {
		switch {
		case a.Begin < b.Begin:
			return -1
		case a.Begin > b.Begin:
			return 1
		}
		return 0
	})
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && (r.Begin <= merged[n-1].End || r.Begin-1 == merged[n-1].End) {
			merged[n-1].End = max(merged[n-1].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

func countPorts(ranges []Range) uint64 {
	var n uint64
	for _, r := range ranges {
		n += r.End - r.Begin + 1
	}
	return n
}

// takePorts gives each of the (sorted, distinct) names a port from the host's
// free ports and removes them: the lowest ones when seed is 0, otherwise ones
// drawn from a generator seeded with seed and the task id. The host must have
// enough free ports.
func (h *host) takePorts(names []string, seed uint64, taskID string) map[string]int {
	if len(names) == 0 {
		return nil
	}
	var rng *rand.Rand
	if seed != 0 {
		f := fnv.New64a()
		f.Write([]byte(taskID))
		rng = rand.New(rand.NewPCG(seed, f.Sum64()))
	}
	ports := make(map[string]int, len(names))
	for _, name := range names {
		var i uint64
		if rng != nil {
			i = rng.Uint64N(h.nports)
		}
		ports[name] = int(h.takePort(i))
	}
	return ports
}

// takePort removes and returns the i-th free port (from 0, in order).
func (h *host) takePort(i uint64) uint64 {
	for k := range h.ports {
		r := &h.ports[k]
		size := r.End - r.Begin + 1
		if i >= size {
			i -= size
			continue
		}
		h.nports--
		port := r.Begin + i
		switch {
		case size == 1:
			h.ports = slices.Delete(h.ports, k, k+1)
		case port == r.Begin:
			r.Begin++
		case port == r.End:
			r.End--
		default:
			rest := Range{Begin: port + 1, End: r.End}
			r.End = port - 1
			h.ports = slices.Insert(h.ports, k+1, rest)
		}
		return port
	}
	panic("match: takePort beyond the free ports")
}
