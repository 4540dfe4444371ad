package update

import "sort"

// Diff compares a job's instances with what an update asks for (Aurora's
// JobDiff): which instances it adds, removes or changes, and which it
// leaves alone. Instance lists are in ascending order.
type Diff struct {
	Add, Remove, Update, Unchanged []int
	// OutOfScope are instances of the scope that the job neither has nor
	// is to have.
	OutOfScope []int
}

// Compute diffs current (instance → configuration of its active task)
// against count instances, 0 to count-1, of desired. A non-empty scope
// restricts the diff to its instances (Aurora's updateOnlyTheseInstances).
func Compute(current map[int]string, desired string, count int, scope []int) Diff {
	in := func(i int) bool { return true }
	if len(scope) > 0 {
		set := map[int]bool{}
		for _, i := range scope {
			set[i] = true
		}
		in = func(i int) bool { return set[i] }
	}
	var d Diff
	for i, c := range current {
		switch {
		case !in(i):
		case i >= count:
			d.Remove = append(d.Remove, i)
		case c == desired:
			d.Unchanged = append(d.Unchanged, i)
		default:
			d.Update = append(d.Update, i)
		}
	}
	for i := 0; i < count; i++ {
		if _, ok := current[i]; !ok && in(i) {
			d.Add = append(d.Add, i)
		}
	}
	seen := map[int]bool{}
	for _, i := range scope {
		if _, ok := current[i]; !ok && (i < 0 || i >= count) && !seen[i] {
			d.OutOfScope = append(d.OutOfScope, i)
		}
		seen[i] = true
	}
	for _, l := range []*[]int{&d.Add, &d.Remove, &d.Update, &d.Unchanged, &d.OutOfScope} {
		sort.Ints(*l)
	}
	return d
}

// Empty reports whether the update would change nothing.
func (d Diff) Empty() bool { return len(d.Add)+len(d.Remove)+len(d.Update) == 0 }

// Instances are the instances the update changes, with their initial and
// desired configurations, for New.
func (d Diff) Instances(current map[int]string, desired string) []Instance {
	var out []Instance
	for _, i := range d.Add {
		out = append(out, Instance{ID: i, Desired: desired})
	}
	for _, i := range d.Update {
		out = append(out, Instance{ID: i, Initial: current[i], Desired: desired})
	}
	for _, i := range d.Remove {
		out = append(out, Instance{ID: i, Initial: current[i]})
	}
	sortInstances(out)
	return out
}
