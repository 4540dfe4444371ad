package ztree

import (
	"fmt"
	"sort"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// Encode appends the whole tree to e: the node count, then each node
// (path, data, ACL, stored Stat) with parents before children.
func (t *Tree) Encode(e *jute.Encoder) {
	paths := make([]string, 0, len(t.nodes))
	for p := range t.nodes {
		paths = append(paths, p)
	}
	sort.Strings(paths) // a parent sorts before its children
	e.Int64(int64(len(paths)))
	for _, p := range paths {
		n := t.nodes[p]
		e.String(p)
		e.Buffer(n.data)
		e.ACLs(n.acl)
		e.Stat(&n.stat)
	}
}

// Decode rebuilds a tree written by Encode.
func Decode(d *jute.Decoder) (*Tree, error) {
	t := &Tree{nodes: map[string]*node{}, ephemerals: map[int64]map[string]struct{}{}}
	count := d.Int64()
	if count < 1 || count > int64(d.Remaining()/4) {
		return nil, fmt.Errorf("snapshot: bad node count %d", count)
	}
	for i := int64(0); i < count && d.Err() == nil; i++ {
		p := d.String()
		n := &node{data: d.Buffer(), acl: d.ACLs(), stat: d.Stat(), children: map[string]struct{}{}}
		if d.Err() != nil {
			break
		}
		if p != "/" {
			parent, ok := t.nodes[Parent(p)]
			if !ok {
				return nil, fmt.Errorf("snapshot: node %q has no parent", p)
			}
			parent.children[base(p)] = struct{}{}
		}
		t.nodes[p] = n
		t.dataBytes += int64(len(p) + len(n.data))
		if o := n.stat.EphemeralOwner; o != 0 {
			if t.ephemerals[o] == nil {
				t.ephemerals[o] = map[string]struct{}{}
			}
			t.ephemerals[o][p] = struct{}{}
		}
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if _, ok := t.nodes["/"]; !ok {
		return nil, fmt.Errorf("snapshot: no root node")
	}
	return t, nil
}
