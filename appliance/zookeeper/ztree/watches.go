package ztree

import "github.com/aurorabox/aurorabox/appliance/zookeeper/jute"

// WatcherID identifies whoever registered a watch; the server uses one per
// client connection.
type WatcherID int64

// Event is a notification due to one watcher.
type Event struct {
	Watcher WatcherID
	Type    int32 // jute.EventNode*
	Path    string
}

// Watches holds one-shot data and child watches, as Apache ZooKeeper's
// WatchManager does: getData and exists register data watches (exists
// also on a missing node), getChildren registers child watches.
type Watches struct {
	data, child map[string]map[WatcherID]struct{}
	// by lets a disconnecting watcher's registrations be dropped without a
	// scan of every path.
	by map[WatcherID]map[watchKey]struct{}
}

type watchKey struct {
	child bool
	path  string
}

// NewWatches returns an empty registry.
func NewWatches() *Watches {
	return &Watches{
		data:  map[string]map[WatcherID]struct{}{},
		child: map[string]map[WatcherID]struct{}{},
		by:    map[WatcherID]map[watchKey]struct{}{},
	}
}

func (w *Watches) add(m map[string]map[WatcherID]struct{}, child bool, path string, id WatcherID) {
	if m[path] == nil {
		m[path] = map[WatcherID]struct{}{}
	}
	m[path][id] = struct{}{}
	if w.by[id] == nil {
		w.by[id] = map[watchKey]struct{}{}
	}
	w.by[id][watchKey{child, path}] = struct{}{}
}

// AddData registers a data (or exists) watch.
func (w *Watches) AddData(path string, id WatcherID) { w.add(w.data, false, path, id) }

// AddChild registers a child watch.
func (w *Watches) AddChild(path string, id WatcherID) { w.add(w.child, true, path, id) }

// Remove drops every watch id registered.
func (w *Watches) Remove(id WatcherID) {
	for k := range w.by[id] {
		m := w.data
		if k.child {
			m = w.child
		}
		delete(m[k.path], id)
		if len(m[k.path]) == 0 {
			delete(m, k.path)
		}
	}
	delete(w.by, id)
}

// Count is the number of registered watches, for mntr's zk_watch_count.
func (w *Watches) Count() int {
	n := 0
	for _, s := range w.by {
		n += len(s)
	}
	return n
}

// Paths is the number of distinct watched paths.
func (w *Watches) Paths() int { return len(w.data) + len(w.child) }

// Watchers is the number of watchers with at least one watch.
func (w *Watches) Watchers() int { return len(w.by) }

// trigger fires and removes the watches on path in m.
func (w *Watches) trigger(m map[string]map[WatcherID]struct{}, child bool, path string, typ int32, seen map[WatcherID]bool, out []Event) []Event {
	for id := range m[path] {
		delete(w.by[id], watchKey{child, path})
		if len(w.by[id]) == 0 {
			delete(w.by, id)
		}
		if seen != nil {
			if seen[id] {
				continue
			}
			seen[id] = true
		}
		out = append(out, Event{Watcher: id, Type: typ, Path: path})
	}
	delete(m, path)
	return out
}

// Fire turns applied changes into events, removing the watches that fire.
func (w *Watches) Fire(changes []Change) []Event {
	var out []Event
	for _, c := range changes {
		switch c.Type {
		case Created:
			out = w.trigger(w.data, false, c.Path, jute.EventNodeCreated, nil, out)
			out = w.trigger(w.child, true, Parent(c.Path), jute.EventNodeChildrenChanged, nil, out)
		case Deleted:
			// A watcher with both a data and a child watch on the path
			// hears NodeDeleted once.
			seen := map[WatcherID]bool{}
			out = w.trigger(w.data, false, c.Path, jute.EventNodeDeleted, seen, out)
			out = w.trigger(w.child, true, c.Path, jute.EventNodeDeleted, seen, out)
			out = w.trigger(w.child, true, Parent(c.Path), jute.EventNodeChildrenChanged, nil, out)
		case DataChanged:
			out = w.trigger(w.data, false, c.Path, jute.EventNodeDataChanged, nil, out)
		}
	}
	return out
}
