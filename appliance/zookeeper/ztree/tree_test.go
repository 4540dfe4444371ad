package ztree

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// nodeState is everything the tree stores about one node, deep-copied so
// that later mutation of the tree cannot change it.
type nodeState struct {
	Data     string
	DataNil  bool
	ACL      []jute.ACL
	Stat     jute.Stat
	Children []string
}

// treeState is a deep copy of a tree's entire state.
type treeState struct {
	Nodes      map[string]nodeState
	Ephemerals map[int64][]string
	DataBytes  int64
}

func stateOf(t *Tree) treeState {
	s := treeState{Nodes: map[string]nodeState{}, Ephemerals: map[int64][]string{}, DataBytes: t.dataBytes}
	for p, n := range t.nodes {
		var kids []string
		for c := range n.children {
			kids = append(kids, c)
		}
		sort.Strings(kids)
		s.Nodes[p] = nodeState{Data: string(n.data), DataNil: n.data == nil,
			ACL: append([]jute.ACL(nil), n.acl...), Stat: n.stat, Children: kids}
	}
	for o, ps := range t.ephemerals {
		for p := range ps {
			s.Ephemerals[o] = append(s.Ephemerals[o], p)
		}
		sort.Strings(s.Ephemerals[o])
	}
	return s
}

// diffStates describes how two states differ, or returns "".
func diffStates(a, b treeState) string {
	var out []string
	for p, na := range a.Nodes {
		nb, ok := b.Nodes[p]
		if !ok {
			out = append(out, "missing "+p)
			continue
		}
		if !reflect.DeepEqual(na, nb) {
			out = append(out, p+": "+fmtAny(na)+" != "+fmtAny(nb))
		}
	}
	for p := range b.Nodes {
		if _, ok := a.Nodes[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	if !reflect.DeepEqual(a.Ephemerals, b.Ephemerals) {
		out = append(out, "ephemerals "+fmtAny(a.Ephemerals)+" != "+fmtAny(b.Ephemerals))
	}
	if a.DataBytes != b.DataBytes {
		out = append(out, "dataBytes "+fmtAny(a.DataBytes)+" != "+fmtAny(b.DataBytes))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }

func mustCreate(t *testing.T, tr *Tree, p string, data string, flags int32, owner, zxid int64) string {
	t.Helper()
	got, _, err := tr.Create(p, []byte(data), jute.OpenACL, flags, owner, zxid, zxid*1000, nil)
	if err != nil {
		t.Fatalf("Create(%q): %v", p, err)
	}
	return got
}

func wantCode(t *testing.T, what string, err error, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: unexpected error %v", what, err)
		}
		return
	}
	var c jute.Code
	if !errors.As(err, &c) || c != want {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path string
		seq  bool
		ok   bool
	}{
		{"/", false, true},
		{"/a", false, true},
		{"/a/b/c", false, true},
		{"/a.b", false, true},
		{"/...", false, true},
		{"/.a", false, true},
		{"/a..", false, true},
		{"/zoo/ké/日本", false, true},
		{"/a b", false, true},
		{"/\u00a0", false, true},  // just above the C1 range
		{"/\uf900", false, true},  // just above the private use area
		{"/\uffef", false, true},  // just below the specials
		{"", false, false},        // empty
		{"a", false, false},       // no leading slash
		{"a/b", false, false},     // relative
		{"/a/", false, false},     // trailing slash
		{"//", false, false},      // empty segment
		{"/a//b", false, false},   // empty segment
		{"/.", false, false},      // relative segment
		{"/..", false, false},     // relative segment
		{"/a/./b", false, false},  // relative segment
		{"/a/../b", false, false}, // relative segment
		{"/a/.", false, false},
		{"/a\x00b", false, false},       // NUL
		{"/\x01", false, false},         // control
		{"/\x1f", false, false},         // control
		{"/a\tb", false, false},         // control
		{"/\x7f", false, false},         // DEL
		{"/\u0080", false, false},       // C1 start
		{"/\u009f", false, false},       // C1 end
		{"/\u0085", false, false},       // C1 NEL
		{"/\ue000", false, false},       // private use
		{"/\uf8ff", false, false},       // end of the private use area
		{"/\ufff0", false, false},       // specials start
		{"/\ufffe", false, false},       // non-character
		{"/\uffff", false, false},       // non-character
		{"/\ufffd", false, false},       // U+FFFD
		{"/a\xffb", false, false},       // invalid UTF-8 decodes to U+FFFD
		{"/\xc3", false, false},         // truncated UTF-8
		{"/\xed\xa0\x80", false, false}, // an encoded surrogate is invalid UTF-8
		// Sequential creates append a counter, so a trailing '/' is fine.
		{"/", true, true},
		{"/a/", true, true},
		{"/a/lock-", true, true},
		{"/a", true, true},
		{"", true, false},
		{"a/", true, false},
		{"//", true, false},
		{"/a//", true, false},
		{"/./", true, false},
		{"/../", true, false},
		{"/\x01/", true, false},
	}
	for _, tt := range tests {
		err := ValidatePath(tt.path, tt.seq)
		if tt.ok && err != nil {
			t.Errorf("ValidatePath(%q, %v) = %v, want nil", tt.path, tt.seq, err)
		}
		if !tt.ok && err != jute.ErrBadArguments {
			t.Errorf("ValidatePath(%q, %v) = %v, want ErrBadArguments", tt.path, tt.seq, err)
		}
	}
}

func TestValidatePathRejectsSupplementaryCharacters(t *testing.T) {
	for _, p := range []string{"/\U0001F600", "/a/\U00010000", "/\U0010FFFD"} {
		if err := ValidatePath(p, false); err != jute.ErrBadArguments {
			t.Errorf("ValidatePath(%q) = %v, want ErrBadArguments as Apache ZooKeeper returns", p, err)
		}
	}
}

func TestParent(t *testing.T) {
	for p, want := range map[string]string{"/": "/", "/a": "/", "/a/b": "/a", "/a/b/c": "/a/b"} {
		if got := Parent(p); got != want {
			t.Errorf("Parent(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestNewTree(t *testing.T) {
	tr := New()
	if tr.NodeCount() != 4 {
		t.Errorf("NodeCount = %d, want 4", tr.NodeCount())
	}
	kids, _, err := tr.Children("/zookeeper", nil)
	if err != nil || !reflect.DeepEqual(kids, []string{"config", "quota"}) {
		t.Errorf("/zookeeper children = %v, %v", kids, err)
	}
	// Apache ZooKeeper's fresh tree reports cversion -1 for "/" and -2
	// for "/zookeeper": its system nodes are added without a create, and
	// DataNode.copyStat reports 2*creates - numChildren.
	for p, want := range map[string]int32{"/": -1, "/zookeeper": -2, "/zookeeper/quota": 0} {
		st, ok := tr.Exists(p)
		if !ok || st.Cversion != want {
			t.Errorf("%s: exists %v, cversion %d, want %d", p, ok, st.Cversion, want)
		}
	}
	// /zookeeper/config is read-only for the world.
	if _, _, err := tr.Create("/zookeeper/config/x", nil, jute.OpenACL, 0, 0, 1, 1, &Who{}); err != jute.ErrNoAuth {
		t.Errorf("create under /zookeeper/config: %v, want NoAuth", err)
	}
}

func TestCreate(t *testing.T) {
	tr := New()
	p, st, err := tr.Create("/app", []byte("hello"), jute.OpenACL, 0, 99, 10, 1000, nil)
	if err != nil || p != "/app" {
		t.Fatalf("Create = %q, %v", p, err)
	}
	want := jute.Stat{Czxid: 10, Mzxid: 10, Pzxid: 10, Ctime: 1000, Mtime: 1000, DataLength: 5}
	if st != want {
		t.Errorf("stat = %+v\nwant %+v", st, want)
	}
	// A persistent node ignores the owner it is passed.
	if len(tr.EphemeralOwners()) != 0 {
		t.Errorf("persistent create recorded an ephemeral owner: %v", tr.EphemeralOwners())
	}
	data, got, err := tr.Get("/app", nil)
	if err != nil || string(data) != "hello" || got != want {
		t.Errorf("Get = %q, %+v, %v", data, got, err)
	}
	root, _ := tr.Exists("/")
	if root.Pzxid != 10 || root.NumChildren != 2 || root.Cversion != 0 {
		// one create of a node counted in 2*1 - 2 children = 0
		t.Errorf("root stat after create = %+v", root)
	}
	if ch := tr.TakeChanges(); !reflect.DeepEqual(ch, []Change{{Created, "/app"}}) {
		t.Errorf("changes = %v", ch)
	}
	if tr.TakeChanges() != nil {
		t.Error("TakeChanges did not clear")
	}
	if tr.DataBytes() != New().DataBytes()+int64(len("/app")+len("hello")) {
		t.Errorf("DataBytes = %d", tr.DataBytes())
	}
}

func TestCreateEphemeral(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/app", "", 0, 0, 1)
	p, st, err := tr.Create("/app/e", nil, jute.OpenACL, jute.FlagEphemeral, 0xabc, 2, 2, nil)
	if err != nil || p != "/app/e" || st.EphemeralOwner != 0xabc {
		t.Fatalf("Create = %q, %+v, %v", p, st, err)
	}
	mustCreate(t, tr, "/app/d", "", jute.FlagEphemeral, 0xabc, 3)
	mustCreate(t, tr, "/app/other", "", jute.FlagEphemeral, 0xdef, 4)
	if got := tr.Ephemerals(0xabc); !reflect.DeepEqual(got, []string{"/app/d", "/app/e"}) {
		t.Errorf("Ephemerals(0xabc) = %v", got)
	}
	if got := tr.EphemeralOwners(); !reflect.DeepEqual(got, []int64{0xabc, 0xdef}) {
		t.Errorf("EphemeralOwners = %v", got)
	}
	if tr.EphemeralCount() != 3 {
		t.Errorf("EphemeralCount = %d", tr.EphemeralCount())
	}
	// No children under an ephemeral, sequential or not.
	for _, flags := range []int32{0, jute.FlagSequential, jute.FlagEphemeral} {
		_, _, err := tr.Create("/app/e/child", nil, jute.OpenACL, flags, 0xabc, 5, 5, nil)
		wantCode(t, "child of ephemeral", err, jute.ErrNoChildrenForEphem)
	}
	// Deleting the node drops the ownership record.
	if err := tr.Delete("/app/other", -1, 6, nil); err != nil {
		t.Fatal(err)
	}
	if got := tr.EphemeralOwners(); !reflect.DeepEqual(got, []int64{0xabc}) {
		t.Errorf("EphemeralOwners after delete = %v", got)
	}
}

func TestCreateSequential(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/q", "", 0, 0, 1)
	zxid := int64(2)
	seq := func(prefix string) string {
		t.Helper()
		zxid++
		return mustCreate(t, tr, prefix, "", jute.FlagSequential, 0, zxid)
	}
	if got := seq("/q/lock-"); got != "/q/lock-0000000000" {
		t.Errorf("first = %q", got)
	}
	if got := seq("/q/lock-"); got != "/q/lock-0000000001" {
		t.Errorf("second = %q", got)
	}
	// A plain create also takes a number from the parent's counter.
	mustCreate(t, tr, "/q/plain", "", 0, 0, 10)
	// Deletes do not: the counter counts creates.
	for _, p := range []string{"/q/lock-0000000000", "/q/plain"} {
		if err := tr.Delete(p, -1, 11, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := seq("/q/lock-"); got != "/q/lock-0000000003" {
		t.Errorf("after deletes = %q, want /q/lock-0000000003", got)
	}
	// Trailing slash: the name is just the number.
	if got := seq("/q/"); got != "/q/0000000004" {
		t.Errorf("trailing slash = %q", got)
	}
	// Sequential ephemerals under the root.
	p, st, err := tr.Create("/", nil, jute.OpenACL, jute.FlagSequential|jute.FlagEphemeral, 5, 20, 20, nil)
	// "/" has one create so far (/q); /zookeeper was never created.
	if err != nil || p != "/0000000001" || st.EphemeralOwner != 5 {
		t.Errorf("Create(/ seq) = %q, %+v, %v", p, st, err)
	}
	// Visible cversion is creates + deletes: 5 creates, 2 deletes.
	st, _ = tr.Exists("/q")
	if st.Cversion != 7 || st.NumChildren != 3 {
		t.Errorf("/q cversion %d numChildren %d, want 7 and 3", st.Cversion, st.NumChildren)
	}
	// A sequential name that collides with an existing node.
	mustCreate(t, tr, "/s", "", 0, 0, 30)
	mustCreate(t, tr, "/s/x0000000001", "", 0, 0, 31) // counter is now 1
	_, _, err = tr.Create("/s/x", nil, jute.OpenACL, jute.FlagSequential, 0, 32, 32, nil)
	wantCode(t, "colliding sequential", err, jute.ErrNodeExists)
}

func TestVisibleCversion(t *testing.T) {
	// cversion counts changes to the children: creates and deletes.
	tr := New()
	mustCreate(t, tr, "/p", "", 0, 0, 1)
	steps := []struct {
		create bool
		name   string
		want   int32
	}{
		{true, "a", 1}, {true, "b", 2}, {false, "a", 3}, {true, "c", 4}, {false, "b", 5}, {false, "c", 6}, {true, "a", 7},
	}
	for i, s := range steps {
		var err error
		if s.create {
			_, _, err = tr.Create("/p/"+s.name, nil, jute.OpenACL, 0, 0, int64(i+2), 0, nil)
		} else {
			err = tr.Delete("/p/"+s.name, -1, int64(i+2), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		st, _ := tr.Exists("/p")
		if st.Cversion != s.want || st.Pzxid != int64(i+2) {
			t.Errorf("step %d: cversion %d pzxid %d, want %d and %d", i, st.Cversion, st.Pzxid, s.want, i+2)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/a", "", 0, 0, 1)
	locked := []jute.ACL{{Perms: jute.PermAll &^ jute.PermCreate, Scheme: "world", ID: "anyone"}}
	if _, _, err := tr.Create("/locked", nil, locked, 0, 0, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	alice := &Who{IDs: []ID{{"digest", "alice:x"}}}
	aliceOnly := []jute.ACL{{Perms: jute.PermCreate, Scheme: "digest", ID: "alice:x"}}
	if _, _, err := tr.Create("/alice", nil, aliceOnly, 0, 0, 3, 3, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		flags int32
		who   *Who
		want  error
	}{
		{"exists", "/a", 0, nil, jute.ErrNodeExists},
		{"root", "/", 0, nil, jute.ErrNodeExists},
		{"no parent", "/missing/child", 0, nil, jute.ErrNoNode},
		{"no parent sequential", "/missing/", jute.FlagSequential, nil, jute.ErrNoNode},
		{"bad path", "/a/", 0, nil, jute.ErrBadArguments},
		{"bad path sequential", "a", jute.FlagSequential, nil, jute.ErrBadArguments},
		{"parent without CREATE", "/locked/x", 0, &Who{}, jute.ErrNoAuth},
		{"parent without CREATE, sequential", "/locked/x", jute.FlagSequential, &Who{}, jute.ErrNoAuth},
		{"nil who skips ACLs", "/locked/y", 0, nil, nil},
		{"digest id not matching", "/alice/x", 0, &Who{IDs: []ID{{"digest", "bob:x"}}}, jute.ErrNoAuth},
		{"scheme must match too", "/alice/x", 0, &Who{IDs: []ID{{"ip", "alice:x"}}}, jute.ErrNoAuth},
		{"digest id matching", "/alice/x", 0, alice, nil},
		// ACL check comes before the existence check, as in Apache.
		{"existing under locked", "/locked/y", 0, &Who{}, jute.ErrNoAuth},
	}
	for _, tt := range tests {
		before := stateOf(tr)
		_, _, err := tr.Create(tt.path, nil, jute.OpenACL, tt.flags, 0, 9, 9, tt.who)
		wantCode(t, tt.name, err, tt.want)
		if tt.want != nil {
			if d := diffStates(before, stateOf(tr)); d != "" {
				t.Errorf("%s: failed create changed the tree:\n%s", tt.name, d)
			}
		}
	}
}

func TestIPACL(t *testing.T) {
	tr := New()
	acl := []jute.ACL{{Perms: jute.PermAll, Scheme: "ip", ID: "10.1.0.0/16"}, {Perms: jute.PermRead, Scheme: "ip", ID: "192.168.1.5"}}
	if _, _, err := tr.Create("/net", []byte("d"), acl, 0, 0, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	ip := func(a string) *Who { return &Who{IDs: []ID{{"ip", a}}} }
	tests := []struct {
		who       *Who
		read, set error
	}{
		{ip("10.1.2.3"), nil, nil},
		{ip("10.2.0.1"), jute.ErrNoAuth, jute.ErrNoAuth},
		{ip("192.168.1.5"), nil, jute.ErrNoAuth},
		{ip("192.168.1.6"), jute.ErrNoAuth, jute.ErrNoAuth},
		{ip("not-an-ip"), jute.ErrNoAuth, jute.ErrNoAuth},
		{&Who{IDs: []ID{{"digest", "10.1.2.3"}}}, jute.ErrNoAuth, jute.ErrNoAuth},
	}
	for _, tt := range tests {
		_, _, err := tr.Get("/net", tt.who)
		wantCode(t, "read as "+tt.who.IDs[0].ID, err, tt.read)
		_, err = tr.SetData("/net", nil, -1, 2, 2, tt.who)
		wantCode(t, "write as "+tt.who.IDs[0].ID, err, tt.set)
	}
}

func TestReadACLs(t *testing.T) {
	tr := New()
	writeOnly := []jute.ACL{{Perms: jute.PermWrite, Scheme: "world", ID: "anyone"}}
	if _, _, err := tr.Create("/w", []byte("secret"), writeOnly, 0, 0, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, tr, "/w2", "", 0, 0, 2)
	anon := &Who{}
	if _, _, err := tr.Get("/w", anon); err != jute.ErrNoAuth {
		t.Errorf("Get: %v", err)
	}
	if _, _, err := tr.Children("/w", anon); err != jute.ErrNoAuth {
		t.Errorf("Children: %v", err)
	}
	if _, _, err := tr.GetACL("/w", anon); err != jute.ErrNoAuth {
		t.Errorf("GetACL: %v", err)
	}
	if _, err := tr.Descendants("/w", anon); err != jute.ErrNoAuth {
		t.Errorf("Descendants: %v", err)
	}
	if err := tr.Check("/w", -1, anon); err != jute.ErrNoAuth {
		t.Errorf("Check: %v", err)
	}
	// exists needs no permission.
	if st, ok := tr.Exists("/w"); !ok || st.DataLength != 6 {
		t.Errorf("Exists = %+v, %v", st, ok)
	}
	if _, err := tr.SetData("/w", []byte("x"), -1, 3, 3, anon); err != nil {
		t.Errorf("SetData with WRITE: %v", err)
	}
	acl, _, err := tr.GetACL("/w2", anon)
	if err != nil || !reflect.DeepEqual(acl, jute.OpenACL) {
		t.Errorf("GetACL = %v, %v", acl, err)
	}
	for _, f := range []func() error{
		func() error { _, _, err := tr.Get("/nope", nil); return err },
		func() error { _, _, err := tr.Children("/nope", nil); return err },
		func() error { _, _, err := tr.GetACL("/nope", nil); return err },
		func() error { _, err := tr.Descendants("/nope", nil); return err },
	} {
		if err := f(); err != jute.ErrNoNode {
			t.Errorf("missing node: %v", err)
		}
	}
	if _, ok := tr.Exists("/nope"); ok {
		t.Error("Exists(/nope)")
	}
}

func TestEmptyACLAllowsAll(t *testing.T) {
	// Apache's checkACL returns early for an empty ACL list.
	tr := New()
	if _, _, err := tr.Create("/open", nil, nil, 0, 0, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Get("/open", &Who{}); err != nil {
		t.Errorf("Get: %v", err)
	}
}

func TestDelete(t *testing.T) {
	setup := func(t *testing.T) *Tree {
		tr := New()
		mustCreate(t, tr, "/a", "", 0, 0, 1)
		mustCreate(t, tr, "/a/b", "data", 0, 0, 2)
		if _, err := tr.SetData("/a/b", []byte("x"), -1, 3, 3, nil); err != nil { // version 1
			t.Fatal(err)
		}
		noDelete := []jute.ACL{{Perms: jute.PermAll &^ jute.PermDelete, Scheme: "world", ID: "anyone"}}
		if _, _, err := tr.Create("/nd", nil, noDelete, 0, 0, 4, 4, nil); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, tr, "/nd/c", "", 0, 0, 5)
		tr.TakeChanges()
		return tr
	}
	tests := []struct {
		name    string
		path    string
		version int32
		who     *Who
		want    error
	}{
		{"any version", "/a/b", -1, nil, nil},
		{"matching version", "/a/b", 1, nil, nil},
		{"stale version", "/a/b", 0, nil, jute.ErrBadVersion},
		{"future version", "/a/b", 2, nil, jute.ErrBadVersion},
		{"not empty", "/a", -1, nil, jute.ErrNotEmpty},
		{"not empty, bad version wins", "/a", 7, nil, jute.ErrBadVersion},
		{"no node", "/a/zz", -1, nil, jute.ErrNoNode},
		{"no parent", "/zz/zz", -1, nil, jute.ErrNoNode},
		{"bad path", "/a/", -1, nil, jute.ErrBadArguments},
		{"root", "/", -1, nil, jute.ErrBadArguments},
		{"system node", "/zookeeper/quota", -1, nil, jute.ErrBadArguments},
		{"missing system node", "/zookeeper/nope", -1, nil, jute.ErrNoNode},
		{"parent without DELETE", "/nd/c", -1, &Who{}, jute.ErrNoAuth},
		{"node's own ACL does not matter", "/a/b", -1, &Who{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := setup(t)
			before := stateOf(tr)
			err := tr.Delete(tt.path, tt.version, 10, tt.who)
			wantCode(t, "Delete", err, tt.want)
			if tt.want != nil {
				if d := diffStates(before, stateOf(tr)); d != "" {
					t.Errorf("failed delete changed the tree:\n%s", d)
				}
				if ch := tr.TakeChanges(); len(ch) != 0 {
					t.Errorf("failed delete recorded changes %v", ch)
				}
				return
			}
			if _, ok := tr.Exists(tt.path); ok {
				t.Error("node still exists")
			}
			if ch := tr.TakeChanges(); !reflect.DeepEqual(ch, []Change{{Deleted, tt.path}}) {
				t.Errorf("changes = %v", ch)
			}
			parent, _ := tr.Exists(Parent(tt.path))
			if parent.Pzxid != 10 || parent.NumChildren != 0 {
				t.Errorf("parent stat = %+v", parent)
			}
			kids, _, _ := tr.Children(Parent(tt.path), nil)
			if len(kids) != 0 {
				t.Errorf("parent still lists %v", kids)
			}
			if want := before.DataBytes - int64(len(tt.path)+len("x")); tr.DataBytes() != want {
				t.Errorf("DataBytes = %d, want %d", tr.DataBytes(), want)
			}
		})
	}
}

func TestSetData(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/a", "one", 0, 0, 1)
	tr.TakeChanges()
	for i, v := range []int32{-1, 1, -1} {
		zxid := int64(10 + i)
		st, err := tr.SetData("/a", []byte(strings.Repeat("x", i+1)), v, zxid, zxid*100, nil)
		if err != nil {
			t.Fatalf("SetData #%d: %v", i, err)
		}
		want := jute.Stat{Czxid: 1, Ctime: 1000, Pzxid: 1, Mzxid: zxid, Mtime: zxid * 100,
			Version: int32(i + 1), DataLength: int32(i + 1)}
		if st != want {
			t.Errorf("#%d stat = %+v\nwant %+v", i, st, want)
		}
	}
	data, _, _ := tr.Get("/a", nil)
	if string(data) != "xxx" {
		t.Errorf("data = %q", data)
	}
	if tr.DataBytes() != New().DataBytes()+int64(len("/a")+3) {
		t.Errorf("DataBytes = %d", tr.DataBytes())
	}
	if ch := tr.TakeChanges(); len(ch) != 3 || ch[0] != (Change{DataChanged, "/a"}) {
		t.Errorf("changes = %v", ch)
	}
	before := stateOf(tr)
	for _, tt := range []struct {
		path    string
		version int32
		who     *Who
		want    error
	}{
		{"/a", 2, nil, jute.ErrBadVersion},
		{"/a", 4, nil, jute.ErrBadVersion},
		{"/b", -1, nil, jute.ErrNoNode},
		{"a", -1, nil, jute.ErrBadArguments},
		{"/zookeeper/config", -1, &Who{}, jute.ErrNoAuth},
	} {
		_, err := tr.SetData(tt.path, []byte("no"), tt.version, 99, 99, tt.who)
		wantCode(t, "SetData "+tt.path, err, tt.want)
	}
	if d := diffStates(before, stateOf(tr)); d != "" {
		t.Errorf("failed SetData changed the tree:\n%s", d)
	}
	if ch := tr.TakeChanges(); len(ch) != 0 {
		t.Errorf("failed SetData recorded %v", ch)
	}
}

func TestSetACL(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/a", "", 0, 0, 1)
	tr.TakeChanges()
	readOnly := []jute.ACL{{Perms: jute.PermRead, Scheme: "world", ID: "anyone"}}
	st, err := tr.SetACL("/a", readOnly, 0, nil)
	if err != nil || st.Aversion != 1 || st.Version != 0 || st.Mzxid != 1 {
		t.Fatalf("SetACL = %+v, %v", st, err)
	}
	acl, st, _ := tr.GetACL("/a", nil)
	if !reflect.DeepEqual(acl, readOnly) || st.Aversion != 1 {
		t.Errorf("GetACL = %v, %+v", acl, st)
	}
	_, err = tr.SetACL("/a", jute.OpenACL, 0, nil)
	wantCode(t, "stale aversion", err, jute.ErrBadVersion)
	// The new ACL has no ADMIN.
	_, err = tr.SetACL("/a", jute.OpenACL, -1, &Who{})
	wantCode(t, "without ADMIN", err, jute.ErrNoAuth)
	_, err = tr.SetACL("/b", jute.OpenACL, -1, nil)
	wantCode(t, "no node", err, jute.ErrNoNode)
	st, err = tr.SetACL("/a", jute.OpenACL, 1, nil)
	if err != nil || st.Aversion != 2 {
		t.Errorf("SetACL = %+v, %v", st, err)
	}
	// An ACL change fires no watch.
	if ch := tr.TakeChanges(); len(ch) != 0 {
		t.Errorf("SetACL recorded %v", ch)
	}
}

func TestCheck(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/a", "", 0, 0, 1)
	if _, err := tr.SetData("/a", nil, -1, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path    string
		version int32
		want    error
	}{
		{"/a", 1, nil},
		{"/a", -1, nil},
		{"/a", 0, jute.ErrBadVersion},
		{"/b", -1, jute.ErrNoNode},
		{"/a/", -1, jute.ErrBadArguments},
	} {
		wantCode(t, "Check "+tt.path, tr.Check(tt.path, tt.version, nil), tt.want)
	}
}

func TestCloseSession(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/a", "", 0, 0, 1)
	mustCreate(t, tr, "/a/e1", "12", jute.FlagEphemeral, 7, 2)
	mustCreate(t, tr, "/e2", "", jute.FlagEphemeral, 7, 3)
	mustCreate(t, tr, "/a/other", "", jute.FlagEphemeral, 8, 4)
	mustCreate(t, tr, "/a/seq-", "", jute.FlagEphemeral|jute.FlagSequential, 7, 5)
	tr.TakeChanges()
	dataBytes := tr.DataBytes()

	paths := tr.CloseSession(7, 50)
	want := []string{"/a/e1", "/a/seq-0000000002", "/e2"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("CloseSession = %v, want %v", paths, want)
	}
	for _, p := range want {
		if _, ok := tr.Exists(p); ok {
			t.Errorf("%s survived", p)
		}
	}
	if _, ok := tr.Exists("/a/other"); !ok {
		t.Error("another session's ephemeral was deleted")
	}
	var changes []string
	for _, c := range tr.TakeChanges() {
		if c.Type != Deleted {
			t.Errorf("change %v is not Deleted", c)
		}
		changes = append(changes, c.Path)
	}
	sort.Strings(changes)
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("Deleted changes for %v, want %v", changes, want)
	}
	if got := tr.EphemeralOwners(); !reflect.DeepEqual(got, []int64{8}) {
		t.Errorf("EphemeralOwners = %v", got)
	}
	if tr.Ephemerals(7) != nil {
		t.Errorf("Ephemerals(7) = %v", tr.Ephemerals(7))
	}
	st, _ := tr.Exists("/a")
	if st.Pzxid != 50 || st.NumChildren != 1 {
		t.Errorf("/a stat = %+v", st)
	}
	if want := dataBytes - int64(len("/a/e1")+2+len("/e2")+len("/a/seq-0000000002")); tr.DataBytes() != want {
		t.Errorf("DataBytes = %d, want %d", tr.DataBytes(), want)
	}
	// Closing again, or closing a session with nothing, does nothing.
	if p := tr.CloseSession(7, 51); len(p) != 0 {
		t.Errorf("second CloseSession = %v", p)
	}
	if ch := tr.TakeChanges(); len(ch) != 0 {
		t.Errorf("second CloseSession recorded %v", ch)
	}
}

// buildMultiTree returns a tree with some history, so that rollback has
// non-trivial stats to restore.
func buildMultiTree(t *testing.T) *Tree {
	tr := New()
	mustCreate(t, tr, "/a", "a-data", 0, 0, 1)
	mustCreate(t, tr, "/a/b", "b", 0, 0, 2)
	mustCreate(t, tr, "/a/gone", "", 0, 0, 3)
	if err := tr.Delete("/a/gone", -1, 4, nil); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, tr, "/a/eph", "e", jute.FlagEphemeral, 77, 5)
	if _, err := tr.SetData("/a/b", []byte("bb"), -1, 6, 6000, nil); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestMultiRollback(t *testing.T) {
	ops := []struct {
		name string
		do   func(tr *Tree) error
	}{
		{"create", func(tr *Tree) error {
			_, _, err := tr.Create("/a/new", []byte("n"), jute.OpenACL, 0, 0, 100, 100, nil)
			return err
		}},
		{"create sequential ephemeral", func(tr *Tree) error {
			_, _, err := tr.Create("/a/s-", []byte("n"), jute.OpenACL, jute.FlagSequential|jute.FlagEphemeral, 88, 100, 100, nil)
			return err
		}},
		{"create ephemeral of existing owner", func(tr *Tree) error {
			_, _, err := tr.Create("/a/e2", nil, jute.OpenACL, jute.FlagEphemeral, 77, 100, 100, nil)
			return err
		}},
		{"create grandchild", func(tr *Tree) error {
			if _, _, err := tr.Create("/n", nil, jute.OpenACL, 0, 0, 100, 100, nil); err != nil {
				return err
			}
			_, _, err := tr.Create("/n/m", nil, jute.OpenACL, 0, 0, 100, 100, nil)
			return err
		}},
		{"delete", func(tr *Tree) error { return tr.Delete("/a/b", 1, 100, nil) }},
		{"delete ephemeral", func(tr *Tree) error { return tr.Delete("/a/eph", -1, 100, nil) }},
		{"setData", func(tr *Tree) error {
			_, err := tr.SetData("/a/b", []byte("longer data"), 1, 100, 100, nil)
			return err
		}},
		{"setData twice", func(tr *Tree) error {
			if _, err := tr.SetData("/a", nil, -1, 100, 100, nil); err != nil {
				return err
			}
			_, err := tr.SetData("/a", []byte("z"), 2, 100, 100, nil)
			return err
		}},
		{"delete then recreate", func(tr *Tree) error {
			if err := tr.Delete("/a/b", -1, 100, nil); err != nil {
				return err
			}
			_, _, err := tr.Create("/a/b", []byte("again"), jute.OpenACL, jute.FlagEphemeral, 99, 100, 100, nil)
			return err
		}},
		{"create then delete", func(tr *Tree) error {
			if _, _, err := tr.Create("/a/tmp", []byte("t"), jute.OpenACL, jute.FlagEphemeral, 77, 100, 100, nil); err != nil {
				return err
			}
			return tr.Delete("/a/tmp", -1, 100, nil)
		}},
		{"setData parent then create child", func(tr *Tree) error {
			if _, err := tr.SetData("/a", []byte("p"), -1, 100, 100, nil); err != nil {
				return err
			}
			_, _, err := tr.Create("/a/c", nil, jute.OpenACL, 0, 0, 100, 100, nil)
			return err
		}},
		{"delete every child then the parent", func(tr *Tree) error {
			for _, p := range []string{"/a/b", "/a/eph", "/a"} {
				if err := tr.Delete(p, -1, 100, nil); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			tr := buildMultiTree(t)
			tr.TakeChanges()
			// An unrelated pending change before the multi must survive.
			if _, err := tr.SetData("/a", []byte("pending"), -1, 50, 50, nil); err != nil {
				t.Fatal(err)
			}
			before := stateOf(tr)
			tr.BeginMulti()
			n := tr.ChangeCount()
			if err := op.do(tr); err != nil {
				t.Fatalf("op: %v", err)
			}
			if d := diffStates(before, stateOf(tr)); d == "" {
				t.Fatal("op changed nothing; the test proves nothing")
			}
			// A failing op at the end, as a multi's failure would be.
			if _, err := tr.SetData("/nope", nil, -1, 100, 100, nil); err == nil {
				t.Fatal("expected failure")
			}
			tr.EndMulti(false, n)
			if d := diffStates(before, stateOf(tr)); d != "" {
				t.Errorf("rollback did not restore the tree:\n%s", d)
			}
			if ch := tr.TakeChanges(); !reflect.DeepEqual(ch, []Change{{DataChanged, "/a"}}) {
				t.Errorf("changes after rollback = %v, want only the pending one", ch)
			}
			// The undo log was cleared: rolling back the next multi must
			// undo only that multi's op, not replay this one's undos.
			if _, err := tr.SetData("/a", []byte("after"), -1, 200, 200, nil); err != nil {
				t.Fatal(err)
			}
			after := stateOf(tr)
			tr.BeginMulti()
			n = tr.ChangeCount()
			mustCreate(t, tr, "/after", "", 0, 0, 201)
			tr.EndMulti(false, n)
			if d := diffStates(after, stateOf(tr)); d != "" {
				t.Errorf("second rollback:\n%s", d)
			}
		})
	}
}

func TestMultiRollbackRestoresSequenceCounter(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/q", "", 0, 0, 1)
	tr.BeginMulti()
	n := tr.ChangeCount()
	for i := 0; i < 3; i++ {
		mustCreate(t, tr, "/q/x-", "", jute.FlagSequential, 0, 2)
	}
	tr.EndMulti(false, n)
	if got := mustCreate(t, tr, "/q/x-", "", jute.FlagSequential, 0, 3); got != "/q/x-0000000000" {
		t.Errorf("after rollback the next name is %q, want /q/x-0000000000", got)
	}
}

func TestMultiCommit(t *testing.T) {
	tr := buildMultiTree(t)
	tr.TakeChanges()
	tr.BeginMulti()
	n := tr.ChangeCount()
	mustCreate(t, tr, "/a/new", "n", 0, 0, 100)
	if err := tr.Delete("/a/eph", -1, 100, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.SetData("/a/b", []byte("c"), -1, 100, 100, nil); err != nil {
		t.Fatal(err)
	}
	tr.EndMulti(true, n)
	after := stateOf(tr)
	want := []Change{{Created, "/a/new"}, {Deleted, "/a/eph"}, {DataChanged, "/a/b"}}
	if ch := tr.TakeChanges(); !reflect.DeepEqual(ch, want) {
		t.Errorf("changes = %v, want %v", ch, want)
	}
	if _, ok := tr.Exists("/a/new"); !ok {
		t.Error("committed create is gone")
	}
	if _, ok := tr.Exists("/a/eph"); ok {
		t.Error("committed delete is undone")
	}
	// A committed multi's undo log must not leak into the next rollback.
	tr.BeginMulti()
	n = tr.ChangeCount()
	mustCreate(t, tr, "/other", "", 0, 0, 101)
	tr.EndMulti(false, n)
	if d := diffStates(after, stateOf(tr)); d != "" {
		t.Errorf("rollback of the next multi touched the committed one:\n%s", d)
	}
}

func TestDescendants(t *testing.T) {
	tr := New()
	for _, p := range []string{"/a", "/a/b", "/a/b/c", "/a/d", "/ab", "/ab/x"} {
		mustCreate(t, tr, p, "", 0, 0, 1)
	}
	for p, want := range map[string]int{
		"/a": 3, "/a/b": 1, "/a/b/c": 0, "/ab": 1,
		// "/" counts everything but itself, /zookeeper's nodes included,
		// as getAllChildrenNumber does.
		"/": 9, "/zookeeper": 2,
	} {
		got, err := tr.Descendants(p, nil)
		if err != nil || got != want {
			t.Errorf("Descendants(%q) = %d, %v, want %d", p, got, err, want)
		}
	}
}

func TestChildrenSorted(t *testing.T) {
	tr := New()
	mustCreate(t, tr, "/p", "", 0, 0, 1)
	for _, c := range []string{"zeta", "alpha", "Mid", "beta"} {
		mustCreate(t, tr, "/p/"+c, "", 0, 0, 2)
	}
	kids, st, err := tr.Children("/p", nil)
	if err != nil || !reflect.DeepEqual(kids, []string{"Mid", "alpha", "beta", "zeta"}) || st.NumChildren != 4 {
		t.Errorf("Children = %v, %+v, %v", kids, st, err)
	}
}

// TestGetACLMasksDigests: without ADMIN a reader sees digest entries as
// "user:x" (ZooKeeper's fix for CVE-2019-0201); with ADMIN, or ADMIN alone
// without READ, the hashes are shown.
func TestGetACLMasksDigests(t *testing.T) {
	tr := New()
	acl := []jute.ACL{
		{Perms: jute.PermAll, Scheme: "digest", ID: "svc:c2VjcmV0aGFzaA="},
		{Perms: jute.PermRead, Scheme: "world", ID: "anyone"},
	}
	if _, _, err := tr.Create("/d", nil, acl, 0, 0, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := tr.GetACL("/d", &Who{})
	if err != nil || got[0].ID != "svc:x" || got[1].ID != "anyone" {
		t.Fatalf("reader without ADMIN: %v %v", got, err)
	}
	if acl[0].ID != "svc:c2VjcmV0aGFzaA=" {
		t.Fatal("masking changed the stored ACL")
	}
	admin := &Who{IDs: []ID{{Scheme: "digest", ID: "svc:c2VjcmV0aGFzaA="}}}
	if got, _, _ := tr.GetACL("/d", admin); got[0].ID != "svc:c2VjcmV0aGFzaA=" {
		t.Fatalf("admin: %v", got)
	}
	adminOnly := []jute.ACL{{Perms: jute.PermAdmin, Scheme: "world", ID: "anyone"}}
	if _, _, err := tr.Create("/a", nil, adminOnly, 0, 0, 2, 2, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.GetACL("/a", &Who{}); err != nil {
		t.Fatalf("ADMIN without READ may read the ACL: %v", err)
	}
}
