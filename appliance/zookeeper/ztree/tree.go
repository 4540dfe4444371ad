// Package ztree is the ZooKeeper data tree: znodes with data, ACLs and Stat,
// ephemeral ownership, sequential naming, one-shot watches and the
// multi-op undo log. It is pure: no I/O, no clock (callers pass zxid and
// time), so the server can apply the same operations live and when
// replaying its transaction log, and tests can drive it directly.
package ztree

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// node is one znode. stat.Cversion holds the number of child creates, the
// counter Apache ZooKeeper names sequential children with; the Stat clients
// see derives the visible cversion from it (see visibleStat).
type node struct {
	data     []byte
	acl      []jute.ACL
	stat     jute.Stat
	children map[string]struct{}
}

// ChangeType says what an applied operation did to a path, for watches.
type ChangeType int

// Change types.
const (
	Created ChangeType = iota + 1
	Deleted
	DataChanged
)

// Change is one effect of an applied operation.
type Change struct {
	Type ChangeType
	Path string
}

// Tree is the data tree. It is not safe for concurrent use: the server
// applies operations from one goroutine.
type Tree struct {
	nodes      map[string]*node
	ephemerals map[int64]map[string]struct{}
	changes    []Change
	undo       []func() // non-nil while a multi is in progress
	inMulti    bool
	dataBytes  int64
}

// New returns a tree holding only "/" and "/zookeeper", as a fresh
// Apache ZooKeeper does.
func New() *Tree {
	t := &Tree{nodes: map[string]*node{}, ephemerals: map[int64]map[string]struct{}{}}
	t.nodes["/"] = &node{acl: jute.OpenACL, children: map[string]struct{}{}}
	t.nodes["/zookeeper"] = &node{acl: jute.OpenACL, children: map[string]struct{}{}}
	t.nodes["/"].children["zookeeper"] = struct{}{}
	t.nodes["/zookeeper"].children["config"] = struct{}{}
	t.nodes["/zookeeper"].children["quota"] = struct{}{}
	t.nodes["/zookeeper/config"] = &node{acl: []jute.ACL{{Perms: jute.PermRead, Scheme: "world", ID: "anyone"}}, children: map[string]struct{}{}}
	t.nodes["/zookeeper/quota"] = &node{acl: jute.OpenACL, children: map[string]struct{}{}}
	for p, n := range t.nodes {
		n.stat.NumChildren = int32(len(n.children))
		t.dataBytes += int64(len(p)) // as Decode counts them
	}
	return t
}

// Who is the identity an operation runs as: the session's authenticated
// ids. A nil *Who skips ACL checks (log replay, internal operations).
type Who struct {
	IDs []ID
}

// ID is an authenticated identity such as digest:"user:hash".
type ID struct{ Scheme, ID string }

// TakeChanges returns and clears the changes applied since the last call.
func (t *Tree) TakeChanges() []Change {
	c := t.changes
	t.changes = nil
	return c
}

// NodeCount is the number of znodes, "/" included.
func (t *Tree) NodeCount() int { return len(t.nodes) }

// DataBytes is the approximate size of all data and paths.
func (t *Tree) DataBytes() int64 { return t.dataBytes }

// EphemeralCount is the number of ephemeral nodes.
func (t *Tree) EphemeralCount() int {
	n := 0
	for _, s := range t.ephemerals {
		n += len(s)
	}
	return n
}

// Ephemerals lists the ephemeral nodes owned by session, sorted.
func (t *Tree) Ephemerals(session int64) []string {
	var out []string
	for p := range t.ephemerals[session] {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// EphemeralOwners lists every session that owns an ephemeral node.
func (t *Tree) EphemeralOwners() []int64 {
	var out []int64
	for s := range t.ephemerals {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func visibleStat(n *node) jute.Stat {
	s := n.stat
	s.NumChildren = int32(len(n.children))
	s.Cversion = 2*n.stat.Cversion - s.NumChildren
	s.DataLength = int32(len(n.data))
	return s
}

// Parent returns the parent path of p ("/" for "/a").
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func base(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// ValidatePath applies Apache ZooKeeper's PathUtils.validatePath rules. A
// sequential create may end in '/', since a suffix follows.
func ValidatePath(p string, sequential bool) error {
	if sequential {
		p += "1"
	}
	if p == "" || p[0] != '/' {
		return jute.ErrBadArguments
	}
	if p == "/" {
		return nil
	}
	if p[len(p)-1] == '/' {
		return jute.ErrBadArguments
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return jute.ErrBadArguments
		}
	}
	// Invalid UTF-8 decodes to U+FFFD here, as it does in Java, and
	// that falls in a rejected range too.
	for _, r := range p {
		if r == 0 || r <= 0x1f || (r >= 0x7f && r <= 0x9f) ||
			(r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
			// Java checks UTF-16 units, so a code point above U+FFFF is a
			// surrogate pair there and falls in the rejected range.
			return jute.ErrBadArguments
		}
	}
	return nil
}

// check reports whether who may perform perm on a node with acl.
func check(who *Who, acl []jute.ACL, perm int32) error {
	if who == nil || len(acl) == 0 {
		return nil
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		if a.Scheme == "world" && a.ID == "anyone" {
			return nil
		}
		for _, id := range who.IDs {
			if id.Scheme == a.Scheme && (id.ID == a.ID || (a.Scheme == "ip" && ipMatch(a.ID, id.ID))) {
				return nil
			}
		}
	}
	return jute.ErrNoAuth
}

func (t *Tree) get(p string) (*node, error) {
	n, ok := t.nodes[p]
	if !ok {
		return nil, jute.ErrNoNode
	}
	return n, nil
}

// Get returns a node's data and Stat, checking READ.
func (t *Tree) Get(p string, who *Who) ([]byte, jute.Stat, error) {
	n, err := t.get(p)
	if err != nil {
		return nil, jute.Stat{}, err
	}
	if err := check(who, n.acl, jute.PermRead); err != nil {
		return nil, jute.Stat{}, err
	}
	return n.data, visibleStat(n), nil
}

// Exists returns a node's Stat; exists needs no permission.
func (t *Tree) Exists(p string) (jute.Stat, bool) {
	n, ok := t.nodes[p]
	if !ok {
		return jute.Stat{}, false
	}
	return visibleStat(n), true
}

// Children returns a node's child names, sorted, and its Stat, checking READ.
func (t *Tree) Children(p string, who *Who) ([]string, jute.Stat, error) {
	n, err := t.get(p)
	if err != nil {
		return nil, jute.Stat{}, err
	}
	if err := check(who, n.acl, jute.PermRead); err != nil {
		return nil, jute.Stat{}, err
	}
	out := make([]string, 0, len(n.children))
	for c := range n.children {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, visibleStat(n), nil
}

// GetACL returns a node's ACL and Stat; it needs READ or ADMIN. As
// ZooKeeper does since CVE-2019-0201, a caller without ADMIN sees digest
// entries with their password hash masked ("user:x").
func (t *Tree) GetACL(p string, who *Who) ([]jute.ACL, jute.Stat, error) {
	n, err := t.get(p)
	if err != nil {
		return nil, jute.Stat{}, err
	}
	if err := check(who, n.acl, jute.PermRead|jute.PermAdmin); err != nil {
		return nil, jute.Stat{}, err
	}
	if check(who, n.acl, jute.PermAdmin) == nil {
		return n.acl, visibleStat(n), nil
	}
	masked := make([]jute.ACL, len(n.acl))
	for i, a := range n.acl {
		if a.Scheme == "digest" {
			user, _, _ := strings.Cut(a.ID, ":")
			a.ID = user + ":x"
		}
		masked[i] = a
	}
	return masked, visibleStat(n), nil
}

// Create creates p (with a sequence suffix when flags has FlagSequential)
// and returns the created path and its Stat. acl must already be fixed up
// (FixupACL). owner is the session for an ephemeral node, else 0.
func (t *Tree) Create(p string, data []byte, acl []jute.ACL, flags int32, owner, zxid, now int64, who *Who) (string, jute.Stat, error) {
	seq := flags&jute.FlagSequential != 0
	if err := ValidatePath(p, seq); err != nil {
		return "", jute.Stat{}, err
	}
	if p == "/" && !seq {
		return "", jute.Stat{}, jute.ErrNodeExists
	}
	parentPath := Parent(p)
	if seq && strings.HasSuffix(p, "/") {
		parentPath = strings.TrimSuffix(p, "/")
		if parentPath == "" {
			parentPath = "/"
		}
	}
	parent, err := t.get(parentPath)
	if err != nil {
		return "", jute.Stat{}, err
	}
	if err := check(who, parent.acl, jute.PermCreate); err != nil {
		return "", jute.Stat{}, err
	}
	if seq {
		p = fmt.Sprintf("%s%010d", p, parent.stat.Cversion)
	}
	if _, ok := t.nodes[p]; ok {
		return "", jute.Stat{}, jute.ErrNodeExists
	}
	if parent.stat.EphemeralOwner != 0 {
		return "", jute.Stat{}, jute.ErrNoChildrenForEphem
	}
	if flags&jute.FlagEphemeral == 0 {
		owner = 0
	}
	n := &node{data: data, acl: acl, children: map[string]struct{}{}}
	n.stat = jute.Stat{Czxid: zxid, Mzxid: zxid, Pzxid: zxid, Ctime: now, Mtime: now, EphemeralOwner: owner}
	oldParent := parent.stat
	t.nodes[p] = n
	name := base(p)
	parent.children[name] = struct{}{}
	parent.stat.Cversion++
	parent.stat.Pzxid = zxid
	t.dataBytes += int64(len(p) + len(data))
	if owner != 0 {
		if t.ephemerals[owner] == nil {
			t.ephemerals[owner] = map[string]struct{}{}
		}
		t.ephemerals[owner][p] = struct{}{}
	}
	t.changes = append(t.changes, Change{Created, p})
	if t.inMulti {
		t.undo = append(t.undo, func() {
			delete(t.nodes, p)
			delete(parent.children, name)
			parent.stat = oldParent
			t.dataBytes -= int64(len(p) + len(data))
			if owner != 0 {
				delete(t.ephemerals[owner], p)
				if len(t.ephemerals[owner]) == 0 {
					delete(t.ephemerals, owner)
				}
			}
		})
	}
	return p, visibleStat(n), nil
}

// Delete deletes p if version matches (-1 matches any).
func (t *Tree) Delete(p string, version int32, zxid int64, who *Who) error {
	if err := ValidatePath(p, false); err != nil {
		return err
	}
	if p == "/" || p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/") {
		// Apache ZooKeeper refuses to delete its system nodes.
		if _, ok := t.nodes[p]; !ok {
			return jute.ErrNoNode
		}
		return jute.ErrBadArguments
	}
	n, err := t.get(p)
	if err != nil {
		return err
	}
	parent := t.nodes[Parent(p)]
	if err := check(who, parent.acl, jute.PermDelete); err != nil {
		return err
	}
	if version != -1 && version != n.stat.Version {
		return jute.ErrBadVersion
	}
	if len(n.children) > 0 {
		return jute.ErrNotEmpty
	}
	t.remove(p, n, parent, zxid)
	return nil
}

func (t *Tree) remove(p string, n, parent *node, zxid int64) {
	oldParent := parent.stat
	name := base(p)
	delete(t.nodes, p)
	delete(parent.children, name)
	parent.stat.Pzxid = zxid
	t.dataBytes -= int64(len(p) + len(n.data))
	owner := n.stat.EphemeralOwner
	if owner != 0 {
		delete(t.ephemerals[owner], p)
		if len(t.ephemerals[owner]) == 0 {
			delete(t.ephemerals, owner)
		}
	}
	t.changes = append(t.changes, Change{Deleted, p})
	if t.inMulti {
		t.undo = append(t.undo, func() {
			t.nodes[p] = n
			parent.children[name] = struct{}{}
			parent.stat = oldParent
			t.dataBytes += int64(len(p) + len(n.data))
			if owner != 0 {
				if t.ephemerals[owner] == nil {
					t.ephemerals[owner] = map[string]struct{}{}
				}
				t.ephemerals[owner][p] = struct{}{}
			}
		})
	}
}

// SetData replaces p's data if version matches and returns the new Stat.
func (t *Tree) SetData(p string, data []byte, version int32, zxid, now int64, who *Who) (jute.Stat, error) {
	if err := ValidatePath(p, false); err != nil {
		return jute.Stat{}, err
	}
	n, err := t.get(p)
	if err != nil {
		return jute.Stat{}, err
	}
	if err := check(who, n.acl, jute.PermWrite); err != nil {
		return jute.Stat{}, err
	}
	if version != -1 && version != n.stat.Version {
		return jute.Stat{}, jute.ErrBadVersion
	}
	old, oldData := n.stat, n.data
	n.data = data
	n.stat.Version++
	n.stat.Mzxid = zxid
	n.stat.Mtime = now
	t.dataBytes += int64(len(data) - len(oldData))
	t.changes = append(t.changes, Change{DataChanged, p})
	if t.inMulti {
		t.undo = append(t.undo, func() {
			n.stat, n.data = old, oldData
			t.dataBytes -= int64(len(data) - len(oldData))
		})
	}
	return visibleStat(n), nil
}

// SetACL replaces p's ACL if version matches its aversion. acl must
// already be fixed up.
func (t *Tree) SetACL(p string, acl []jute.ACL, version int32, who *Who) (jute.Stat, error) {
	if err := ValidatePath(p, false); err != nil {
		return jute.Stat{}, err
	}
	n, err := t.get(p)
	if err != nil {
		return jute.Stat{}, err
	}
	if err := check(who, n.acl, jute.PermAdmin); err != nil {
		return jute.Stat{}, err
	}
	if version != -1 && version != n.stat.Aversion {
		return jute.Stat{}, jute.ErrBadVersion
	}
	n.acl = acl
	n.stat.Aversion++
	return visibleStat(n), nil
}

// Check is multi's version check: p must exist with the given version.
func (t *Tree) Check(p string, version int32, who *Who) error {
	if err := ValidatePath(p, false); err != nil {
		return err
	}
	n, err := t.get(p)
	if err != nil {
		return err
	}
	if err := check(who, n.acl, jute.PermRead); err != nil {
		return err
	}
	if version != -1 && version != n.stat.Version {
		return jute.ErrBadVersion
	}
	return nil
}

// CloseSession deletes every ephemeral node session owns and returns their
// paths.
func (t *Tree) CloseSession(session int64, zxid int64) []string {
	paths := t.Ephemerals(session)
	for _, p := range paths {
		n := t.nodes[p]
		t.remove(p, n, t.nodes[Parent(p)], zxid)
	}
	return paths
}

// BeginMulti starts recording undo actions for an atomic multi.
func (t *Tree) BeginMulti() {
	t.inMulti = true
	t.undo = t.undo[:0]
}

// EndMulti finishes a multi: on commit the changes stay; otherwise every
// operation since BeginMulti is undone and its changes are dropped.
func (t *Tree) EndMulti(commit bool, changesBefore int) {
	if !commit {
		for i := len(t.undo) - 1; i >= 0; i-- {
			t.undo[i]()
		}
		t.changes = t.changes[:changesBefore]
	}
	t.undo = t.undo[:0]
	t.inMulti = false
}

// ChangeCount is the number of changes not yet taken, for EndMulti.
func (t *Tree) ChangeCount() int { return len(t.changes) }

// Descendants counts the nodes below p (getAllChildrenNumber), checking
// READ on p.
func (t *Tree) Descendants(p string, who *Who) (int, error) {
	n, err := t.get(p)
	if err != nil {
		return 0, err
	}
	if err := check(who, n.acl, jute.PermRead); err != nil {
		return 0, err
	}
	prefix := p + "/"
	if p == "/" {
		prefix = "/"
	}
	count := 0
	for q := range t.nodes {
		if q != p && strings.HasPrefix(q, prefix) {
			count++
		}
	}
	return count, nil
}
