package ztree

import (
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// sortEvents orders events for comparison; Fire's order among watchers of
// one path follows map iteration.
func sortEvents(ev []Event) []Event {
	out := append([]Event(nil), ev...)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Watcher != b.Watcher {
			return a.Watcher < b.Watcher
		}
		return a.Type < b.Type
	})
	return out
}

func TestWatchesFire(t *testing.T) {
	type reg struct {
		child bool
		path  string
		id    WatcherID
	}
	data := func(p string, id WatcherID) reg { return reg{false, p, id} }
	child := func(p string, id WatcherID) reg { return reg{true, p, id} }
	tests := []struct {
		name    string
		regs    []reg
		changes []Change
		want    []Event
		left    int // watches still registered afterwards
	}{
		{"created fires data watch (exists on a missing node)",
			[]reg{data("/a", 1)}, []Change{{Created, "/a"}},
			[]Event{{1, jute.EventNodeCreated, "/a"}}, 0},
		{"created fires parent's child watch",
			[]reg{child("/p", 1)}, []Change{{Created, "/p/c"}},
			[]Event{{1, jute.EventNodeChildrenChanged, "/p"}}, 0},
		{"created under root fires root's child watch",
			[]reg{child("/", 1)}, []Change{{Created, "/a"}},
			[]Event{{1, jute.EventNodeChildrenChanged, "/"}}, 0},
		{"created does not fire a child watch on itself",
			[]reg{child("/a", 1)}, []Change{{Created, "/a"}}, nil, 1},
		{"created does not fire grandparent",
			[]reg{child("/p", 1)}, []Change{{Created, "/p/c/d"}}, nil, 1},
		{"data changed fires data watch only",
			[]reg{data("/a", 1), child("/a", 2), child("/", 3)}, []Change{{DataChanged, "/a"}},
			[]Event{{1, jute.EventNodeDataChanged, "/a"}}, 2},
		{"deleted fires data and child watch on the node and parent's child watch",
			[]reg{data("/p/c", 1), child("/p/c", 2), child("/p", 3), data("/p", 4)},
			[]Change{{Deleted, "/p/c"}},
			[]Event{{3, jute.EventNodeChildrenChanged, "/p"}, {1, jute.EventNodeDeleted, "/p/c"}, {2, jute.EventNodeDeleted, "/p/c"}}, 1},
		{"both watches on a deleted node: one NodeDeleted",
			[]reg{data("/a", 1), child("/a", 1)}, []Change{{Deleted, "/a"}},
			[]Event{{1, jute.EventNodeDeleted, "/a"}}, 0},
		{"both watches on a deleted node, and the parent's child watch",
			[]reg{data("/p/a", 1), child("/p/a", 1), child("/p", 1)}, []Change{{Deleted, "/p/a"}},
			[]Event{{1, jute.EventNodeChildrenChanged, "/p"}, {1, jute.EventNodeDeleted, "/p/a"}}, 0},
		{"several watchers on one path all fire",
			[]reg{data("/a", 1), data("/a", 2), data("/a", 3)}, []Change{{DataChanged, "/a"}},
			[]Event{{1, jute.EventNodeDataChanged, "/a"}, {2, jute.EventNodeDataChanged, "/a"}, {3, jute.EventNodeDataChanged, "/a"}}, 0},
		{"registering twice is one watch",
			[]reg{data("/a", 1), data("/a", 1)}, []Change{{DataChanged, "/a"}},
			[]Event{{1, jute.EventNodeDataChanged, "/a"}}, 0},
		{"one-shot within one Fire: create then set data",
			[]reg{data("/a", 1)}, []Change{{Created, "/a"}, {DataChanged, "/a"}},
			[]Event{{1, jute.EventNodeCreated, "/a"}}, 0},
		{"one-shot within one Fire: two children created",
			[]reg{child("/p", 1)}, []Change{{Created, "/p/a"}, {Created, "/p/b"}},
			[]Event{{1, jute.EventNodeChildrenChanged, "/p"}}, 0},
		{"unrelated path",
			[]reg{data("/a", 1), child("/a", 1)}, []Change{{DataChanged, "/b"}, {Created, "/ab"}, {Deleted, "/b/a"}}, nil, 2},
		{"no changes", []reg{data("/a", 1)}, nil, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatches()
			for _, r := range tt.regs {
				if r.child {
					w.AddChild(r.path, r.id)
				} else {
					w.AddData(r.path, r.id)
				}
			}
			got := sortEvents(w.Fire(tt.changes))
			if want := sortEvents(tt.want); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("events = %v\nwant %v", got, want)
			}
			if w.Count() != tt.left {
				t.Errorf("Count after Fire = %d, want %d", w.Count(), tt.left)
			}
			// One-shot: firing the same changes again yields only what
			// did not fire the first time, which is nothing here.
			if again := w.Fire(tt.changes); len(again) != 0 {
				t.Errorf("second Fire = %v", again)
			}
		})
	}
}

func TestWatchesFireDrivenByTree(t *testing.T) {
	// The tree's changes and Fire together: what a client sees.
	tr := New()
	w := NewWatches()
	w.AddData("/a", 1) // exists on a missing node
	w.AddChild("/", 2) // getChildren /
	if _, _, err := tr.Create("/a", nil, jute.OpenACL, 0, 0, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := sortEvents(w.Fire(tr.TakeChanges()))
	want := []Event{{2, jute.EventNodeChildrenChanged, "/"}, {1, jute.EventNodeCreated, "/a"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	w.AddData("/a", 1)
	w.AddData("/a/e", 3)
	if _, _, err := tr.Create("/a/e", nil, jute.OpenACL, jute.FlagEphemeral, 42, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	tr.TakeChanges()
	w.AddData("/a/e", 3)
	w.AddChild("/a", 4)
	tr.CloseSession(42, 3)
	got = sortEvents(w.Fire(tr.TakeChanges()))
	want = []Event{{4, jute.EventNodeChildrenChanged, "/a"}, {3, jute.EventNodeDeleted, "/a/e"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events after session close = %v, want %v", got, want)
	}
	if w.Count() != 1 { // watcher 1's data watch on /a
		t.Errorf("Count = %d", w.Count())
	}
}

func TestWatchesRemove(t *testing.T) {
	w := NewWatches()
	w.AddData("/a", 1)
	w.AddChild("/a", 1)
	w.AddData("/b", 1)
	w.AddData("/a", 2)
	w.AddChild("/c", 2)
	if w.Count() != 5 || w.Watchers() != 2 {
		t.Fatalf("Count %d Watchers %d", w.Count(), w.Watchers())
	}
	w.Remove(1)
	if w.Count() != 2 || w.Watchers() != 1 {
		t.Errorf("after Remove(1): Count %d Watchers %d", w.Count(), w.Watchers())
	}
	// /b had only watcher 1's watch: the path is gone.
	if w.Paths() != 2 { // data /a, child /c
		t.Errorf("Paths = %d, want 2", w.Paths())
	}
	got := sortEvents(w.Fire([]Change{{Deleted, "/a"}, {Deleted, "/b"}, {Created, "/c/x"}}))
	want := []Event{{2, jute.EventNodeDeleted, "/a"}, {2, jute.EventNodeChildrenChanged, "/c"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if w.Count() != 0 || w.Watchers() != 0 || w.Paths() != 0 {
		t.Errorf("after firing all: Count %d Watchers %d Paths %d", w.Count(), w.Watchers(), w.Paths())
	}
	// Removing an unknown watcher is harmless.
	w.Remove(99)
}

func TestWatchesCounts(t *testing.T) {
	w := NewWatches()
	if w.Count() != 0 || w.Paths() != 0 || w.Watchers() != 0 {
		t.Fatal("new registry is not empty")
	}
	for i := 0; i < 10; i++ {
		w.AddData(fmt.Sprintf("/n%d", i%3), WatcherID(i%4))
	}
	// The pairs (path i%3, watcher i%4) do not repeat before i = 12, so
	// these are 10 distinct watches.
	if w.Count() != 10 {
		t.Errorf("Count = %d, want 10", w.Count())
	}
	if w.Paths() != 3 {
		t.Errorf("Paths = %d, want 3", w.Paths())
	}
	if w.Watchers() != 4 {
		t.Errorf("Watchers = %d, want 4", w.Watchers())
	}
	// A data and a child watch on one path count as two paths, as
	// Apache's wchs adds the data and child WatchManagers' path counts.
	w.AddChild("/n0", 0)
	if w.Paths() != 4 || w.Count() != 11 {
		t.Errorf("after a child watch: Paths %d Count %d", w.Paths(), w.Count())
	}
	// Firing removes watches from the per-watcher index too.
	w.Fire([]Change{{DataChanged, "/n0"}})
	// /n0 had data watches from i = 0, 3, 6, 9: watchers 0, 3, 2, 1.
	if w.Count() != 7 || w.Watchers() != 4 {
		t.Errorf("after firing /n0: Count %d Watchers %d", w.Count(), w.Watchers())
	}
	w.Fire([]Change{{DataChanged, "/n1"}, {DataChanged, "/n2"}})
	// Only watcher 0's child watch on /n0 is left.
	if w.Count() != 1 || w.Watchers() != 1 || w.Paths() != 1 {
		t.Errorf("after firing all data: Count %d Watchers %d Paths %d", w.Count(), w.Watchers(), w.Paths())
	}
}
