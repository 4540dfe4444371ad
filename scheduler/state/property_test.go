package state

import (
	"fmt"
	"math/rand"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// chooser is a source of choices: a seeded random generator or fuzz bytes.
type chooser interface{ intn(n int) int }

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.Intn(n) }

type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) intn(n int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

func (c *byteChooser) done() bool { return c.i >= len(c.b) }

// walker drives random requests and timers through a Machine over a map
// store, checking invariants after every step.
type walker struct {
	m      *Machine
	store  map[string]Task
	ids    []string
	timers []Timer
	pairs  map[pair]bool // successful transitions seen
	now    time.Time
	next   int
}

func newWalker(cfg Config) *walker {
	w := &walker{store: map[string]Task{}, now: base, pairs: map[pair]bool{}}
	w.m = &Machine{Config: cfg, NewTaskID: func(Task) string { return w.newID() }}
	return w
}

func (w *walker) newID() string {
	w.next++
	return "w" + strconv.Itoa(w.next)
}

var targets = append(Statuses(), Deleted, Status(99))

func (w *walker) step(c chooser) error {
	w.now = w.now.Add(time.Duration(c.intn(8)) * 45 * time.Second)
	switch op := c.intn(10); {
	case op == 0 || len(w.ids) == 0:
		tk := Task{ID: w.newID(), Status: Init, IsService: c.intn(2) == 0, MaxTaskFailures: c.intn(5) - 1, FailureCount: c.intn(3)}
		switch c.intn(4) {
		case 1:
			tk.PartitionPolicy = &PartitionPolicy{Reschedule: true, Delay: time.Duration(c.intn(3)) * time.Minute}
		case 2, 3:
			tk.PartitionPolicy = &PartitionPolicy{}
		}
		w.store[tk.ID] = tk
		w.ids = append(w.ids, tk.ID)
		return nil
	case op <= 2 && len(w.timers) > 0:
		i := c.intn(len(w.timers))
		tm := w.timers[i]
		w.timers = append(w.timers[:i], w.timers[i+1:]...)
		before := w.store[tm.TaskID]
		r := w.m.Fire(before, tm, w.now)
		if r.Outcome != Stale && w.now.Before(tm.At) {
			return fmt.Errorf("timer %+v fired at %s, before it was due", tm, off(w.now))
		}
		return w.check(before, r)
	default:
		// Mostly work on recent tasks, and mostly ask for transitions the
		// table allows, so that the walk gets deep into the lifecycle.
		var id string
		if n := len(w.ids); c.intn(4) == 0 {
			id = w.ids[c.intn(n)]
		} else {
			id = w.ids[n-1-c.intn(min(n, 3))]
		}
		before := w.store[id]
		to := targets[c.intn(len(targets))]
		if next := Transitions(before.Status); len(next) > 0 && c.intn(3) != 0 {
			to = next[c.intn(len(next))]
		}
		r := w.m.Transition(before, to, Event{Time: w.now, Message: "walk"})
		if r.Outcome == Success && !Allowed(before.Status, to) {
			return fmt.Errorf("%s: %v -> %v succeeded but §5.2 does not allow it", id, before.Status, to)
		}
		return w.check(before, r)
	}
}

// check verifies one result against the invariants and applies it.
func (w *walker) check(before Task, r Result) error {
	id := before.ID
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s (%v, outcome %v, actions %+v): %s", id, before.Status, r.Outcome, r.Actions, fmt.Sprintf(format, args...))
	}
	if !reflect.DeepEqual(normalize(w.store[id]), normalize(before)) {
		return fail("Transition modified its input")
	}
	switch r.Outcome {
	case Noop, Stale:
		if len(r.Actions) != 0 || !reflect.DeepEqual(normalize(r.Task), normalize(before)) {
			return fail("a %v changed something", r.Outcome)
		}
		return nil
	case Illegal:
		for _, a := range r.Actions {
			if a.Kind != KillTask || a.TaskID != id {
				return fail("illegal transition with action %v", a.Kind)
			}
		}
		if !reflect.DeepEqual(normalize(r.Task), normalize(before)) {
			return fail("illegal transition changed the task")
		}
		return nil
	case Success:
	default:
		return fail("unknown outcome")
	}
	if before.Status == Deleted {
		return fail("a deleted task changed")
	}
	if before.Status.Terminal() && r.Task.Status != Deleted {
		return fail("terminal task became %v", r.Task.Status)
	}
	// The task's own transitions must chain and be in the table.
	cur := before.Status
	for _, a := range r.Actions {
		switch a.Kind {
		case SaveState, Delete:
			if a.TaskID != id {
				return fail("%v for another task %s", a.Kind, a.TaskID)
			}
			if a.From != cur {
				return fail("%v from %v, but the task is %v", a.Kind, a.From, cur)
			}
			if !inTable(a.From, a.To) {
				return fail("%v -> %v is not in §5.2", a.From, a.To)
			}
			w.pairs[pair{a.From, a.To}] = true
			cur = a.To
			if a.Kind == Delete {
				cur = Deleted
			}
		case IncrementFailures:
			if a.TaskID != id {
				return fail("increment for another task")
			}
		case Reschedule:
			nt := a.Replacement
			if nt == nil || a.TaskID != id || nt.AncestorID != id || nt.ID == "" || nt.ID == id {
				return fail("bad replacement %+v", nt)
			}
			if _, dup := w.store[nt.ID]; dup {
				return fail("replacement reuses id %s", nt.ID)
			}
			if nt.FailureCount != r.Task.FailureCount || nt.IsService != before.IsService || nt.MaxTaskFailures != before.MaxTaskFailures {
				return fail("replacement %+v does not carry the task's settings (%+v)", nt, r.Task)
			}
			if a.From != Init || !inTable(Init, a.To) || nt.Status != a.To || len(nt.Events) != 1 {
				return fail("replacement %+v starts as %v -> %v", nt, a.From, a.To)
			}
			w.pairs[pair{a.From, a.To}] = true
			if (nt.Status == Throttled) != (w.m.Config.Penalty(*nt) > 0) {
				return fail("replacement %v with flaps=%d never_ran=%d and penalty %v", nt.Status, nt.Flaps, nt.NeverRan, w.m.Config.Penalty(*nt))
			}
			if nt.NeverRan > nt.Flaps {
				return fail("replacement with never_ran=%d > flaps=%d", nt.NeverRan, nt.Flaps)
			}
			if !r.Task.Status.Terminal() {
				return fail("rescheduled a task that ends %v", r.Task.Status)
			}
			if r.Task.wasKilling() {
				return fail("rescheduled a task that a user killed")
			}
		case KillTask:
			if a.TaskID != id {
				return fail("kill for another task")
			}
		case Schedule:
			tm := a.Timer
			owner := r.Task
			if tm.TaskID != id {
				owner = Task{}
				for _, b := range r.Actions {
					if b.Kind == Reschedule && b.Replacement.ID == tm.TaskID {
						owner = *b.Replacement
					}
				}
			}
			if owner.ID == "" || tm.Status != owner.Status || !tm.Since.Equal(owner.LastEventTime()) {
				return fail("timer %+v does not match its task %+v", tm, owner)
			}
			w.timers = append(w.timers, tm)
		}
	}
	if cur != r.Task.Status {
		return fail("actions end in %v, result says %v", cur, r.Task.Status)
	}
	if before.Status != Init && !before.Status.SlaveAssigned() && !before.Status.Terminal() {
		// PENDING, THROTTLED: nothing is running that could be killed.
		for _, a := range r.Actions {
			if a.Kind == KillTask {
				return fail("kill for a task that was never placed")
			}
		}
	}
	shadow := map[string]Task{}
	for k, v := range w.store {
		shadow[k] = v.clone()
	}
	if err := performActions(shadow, r.Actions); err != nil {
		return fail("%v", err)
	}
	if !reflect.DeepEqual(normalize(shadow[id]), normalize(r.Task)) {
		return fail("actions give %+v, result says %+v", shadow[id], r.Task)
	}
	for k := range shadow {
		if _, ok := w.store[k]; !ok {
			w.ids = append(w.ids, k)
		}
	}
	w.store = shadow
	return nil
}

// TestRandomWalk runs seeded random sequences of requests and timers and
// checks that no transition outside §5.2 happens, that deleted tasks stay
// deleted, that terminal tasks only ever get deleted, and that replacements
// carry the ancestor id and the failure count.
func TestRandomWalk(t *testing.T) {
	seen := map[pair]bool{}
	for seed := int64(1); seed <= 300; seed++ {
		cfg := AuroraConfig()
		if seed%2 == 0 {
			cfg = DevConfig()
		}
		w := newWalker(cfg)
		c := randChooser{rand.New(rand.NewSource(seed))}
		for i := 0; i < 400; i++ {
			if err := w.step(c); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, i, err)
			}
		}
		if len(w.store) < 10 {
			t.Fatalf("seed %d: only %d tasks; is the walk doing anything?", seed, len(w.store))
		}
		for p := range w.pairs {
			seen[p] = true
		}
	}
	// The walk must reach every transition of the table, or it proves little.
	for from, tos := range tablePairs {
		for _, to := range tos {
			if !seen[pair{from, to}] {
				t.Errorf("the random walk never made %v", pair{from, to})
			}
		}
	}
}

// FuzzWalk is TestRandomWalk driven by fuzz input.
func FuzzWalk(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 3, 5, 0, 2, 0, 4, 3, 0, 9, 1, 7, 0, 2, 0, 6, 2, 9, 3})
	f.Add([]byte{7, 0, 0, 0, 1, 2, 1, 4, 0, 5, 7, 0, 8, 1, 6, 6, 1, 1, 4, 0, 18, 3, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := AuroraConfig()
		if len(data) > 0 && data[0]%2 == 1 {
			cfg = DevConfig()
		}
		w := newWalker(cfg)
		c := &byteChooser{b: data}
		for i := 0; !c.done() && i < 2000; i++ {
			if err := w.step(c); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	})
}
