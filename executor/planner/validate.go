package planner

import (
	"errors"
	"fmt"
	"strings"
)

// validName is Thermos's ^[^./][^/]*$: the name is a directory name under
// .logs/, so it must not be empty, hidden, "." or "..", or contain a slash.
func validName(n string) bool {
	return n != "" && n[0] != '.' && n[0] != '/' && !strings.Contains(n, "/")
}

// Validate checks a task against Thermos's rules: valid and unique process
// names, non-negative limits, and order constraints that name existing
// processes of one plan, form no cycle, never make a process depend on a daemon
// and never make a non-ephemeral process depend on an ephemeral one. It reports
// every problem it finds.
func Validate(t Task) error {
	_, err := compile(t)
	return err
}

// compile validates t and returns each process's dependencies (indexes).
func compile(t Task) ([][]int, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(t.Processes) == 0 {
		bad("task %q has no processes", t.Name)
	}
	if t.MaxFailures < 0 {
		bad("task max_failures must be >= 0, not %d", t.MaxFailures)
	}
	if t.MaxConcurrency < 0 {
		bad("task max_concurrency must be >= 0, not %d", t.MaxConcurrency)
	}
	if t.FinalizationWait < 0 {
		bad("task finalization_wait must be >= 0, not %v", t.FinalizationWait)
	}
	index := make(map[string]int, len(t.Processes))
	for i, p := range t.Processes {
		if !validName(p.Name) {
			bad("process %d: invalid name %q (must match ^[^./][^/]*$)", i, p.Name)
		} else if _, dup := index[p.Name]; dup {
			bad("duplicate process name %q", p.Name)
		} else {
			index[p.Name] = i
		}
		if p.MaxFailures < 0 {
			bad("process %q: max_failures must be >= 0, not %d", p.Name, p.MaxFailures)
		}
		if p.MinDuration < 0 {
			bad("process %q: min_duration must be >= 0, not %v", p.Name, p.MinDuration)
		}
	}

	deps := make([][]int, len(t.Processes))
	for _, order := range t.Order {
		if len(order) == 0 {
			continue
		}
		ok := true
		for _, n := range order {
			if _, found := index[n]; !found {
				bad("order %v: unknown process %q", order, n)
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, n := range order[1:] {
			if a, b := t.Processes[index[order[0]]], t.Processes[index[n]]; a.Final != b.Final {
				bad("order %v: %s and %s are in different plans (regular and final)", order, planName(a), planName(b))
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for k := 1; k < len(order); k++ {
			before, after := t.Processes[index[order[k-1]]], t.Processes[index[order[k]]]
			if before.Daemon {
				bad("process %q may not depend on daemon process %q", after.Name, before.Name)
				continue
			}
			if before.Ephemeral && !after.Ephemeral {
				bad("non-ephemeral process %q may not depend on ephemeral process %q", after.Name, before.Name)
				continue
			}
			deps[index[after.Name]] = appendUnique(deps[index[after.Name]], index[before.Name])
		}
	}
	if len(errs) == 0 {
		if cycle := findCycle(deps); cycle != nil {
			names := make([]string, len(cycle))
			for i, c := range cycle {
				names[i] = t.Processes[c].Name
			}
			bad("order constraints form a cycle: %s", strings.Join(names, " -> "))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid task %q: %w", t.Name, err)
	}
	return deps, nil
}

func planName(p Process) string {
	if p.Final {
		return fmt.Sprintf("%q (final)", p.Name)
	}
	return fmt.Sprintf("%q (regular)", p.Name)
}

func appendUnique(s []int, v int) []int {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// findCycle returns a dependency cycle as a path that starts and ends with the
// same process, following "runs before" edges, or nil. The search goes in
// declaration order so the report is deterministic.
func findCycle(deps [][]int) []int {
	const (
		unseen = iota
		onPath
		done
	)
	color := make([]int, len(deps))
	var path []int
	var visit func(int) []int
	visit = func(n int) []int {
		color[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			switch color[d] {
			case onPath:
				// path holds n's dependants down to n; the cycle is the
				// part from d to n, plus d again.
				for i, x := range path {
					if x == d {
						cyc := append([]int(nil), path[i:]...)
						cyc = append(cyc, d)
						// Edges go from dependant to dependency; reverse to
						// read in run order.
						for l, r := 0, len(cyc)-1; l < r; l, r = l+1, r-1 {
							cyc[l], cyc[r] = cyc[r], cyc[l]
						}
						return cyc
					}
				}
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		color[n] = done
		return nil
	}
	for n := range deps {
		if color[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}
