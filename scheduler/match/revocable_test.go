package match

import (
	"reflect"
	"testing"
)

// TestRevocableCPUs: a revocable request takes its CPUs, executor overhead
// included, only from an offer's revocable CPUs and everything else from the
// non-revocable resources; a non-revocable request never uses revocable CPUs.
func TestRevocableCPUs(t *testing.T) {
	job := JobKey{"www-data", "devel", "r"}
	m := &Matcher{Overhead: Overhead{CPUs: 0.25, MemMB: 32}}
	// h1 has only revocable CPUs; h2 only non-revocable ones.
	offers := agents(2, func(i int, o *Offer) {
		if i == 1 {
			o.CPUs, o.RevocableCPUs = 0, 3
		}
	})
	revocable := instances(job, 2, nil, func(r *Request) { r.Revocable = true })
	as, _, vetoes := m.Assign(offers, revocable, nil)
	if got, want := placement(as), map[string]string{revocable[0].TaskID: "h1", revocable[1].TaskID: "h1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("revocable placement = %v, want %v (vetoes %v)", got, want, vetoes)
	}

	// 1.25 revocable CPUs each: the third does not fit the 3 revocable
	// CPUs, and the 8 non-revocable ones of h2 are no help.
	third := instances(job, 3, nil, func(r *Request) { r.Revocable = true })
	as, _, vetoes = m.Assign(offers, third, nil)
	if len(as) != 2 {
		t.Errorf("placed %d revocable tasks of 1.25 cpus on 3 revocable cpus, want 2", len(as))
	}
	if got := reasons(vetoes[third[2].TaskID]); !reflect.DeepEqual(got, []string{"Insufficient: CPU"}) {
		t.Errorf("vetoes of the third = %v, want Insufficient CPU", got)
	}

	ordinary := instances(JobKey{"www-data", "devel", "n"}, 2, nil, nil)
	as, _, _ = m.Assign(offers, ordinary, nil)
	for _, a := range as {
		if a.Hostname != "h2" {
			t.Errorf("non-revocable task %s placed on %s, which has only revocable CPUs", a.TaskID, a.Hostname)
		}
	}
	if len(as) != 2 {
		t.Errorf("placed %d non-revocable tasks, want 2", len(as))
	}
	if v := m.Filter(offers[0], ordinary[0], nil); !reflect.DeepEqual(reasons(v), []string{"Insufficient: CPU"}) {
		t.Errorf("Filter(non-revocable on revocable-only offer) = %v, want Insufficient CPU", reasons(v))
	}
	if v := m.Filter(offers[1], revocable[0], nil); !reflect.DeepEqual(reasons(v), []string{"Insufficient: CPU"}) {
		t.Errorf("Filter(revocable on non-revocable offer) = %v, want Insufficient CPU", reasons(v))
	}
}
