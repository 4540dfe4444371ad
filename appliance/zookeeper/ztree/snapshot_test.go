package ztree

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// richTree has every kind of node a snapshot must carry: nil, empty and
// binary data, custom and empty ACLs, ephemerals of two sessions,
// sequential children with deletes behind them, and non-zero versions.
func richTree(t *testing.T) *Tree {
	t.Helper()
	tr := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	create := func(p string, data []byte, acl []jute.ACL, flags int32, owner, zxid int64) string {
		t.Helper()
		got, _, err := tr.Create(p, data, acl, flags, owner, zxid, 1_700_000_000_000+zxid, nil)
		must(err)
		return got
	}
	digest := []jute.ACL{{Perms: jute.PermRead | jute.PermAdmin, Scheme: "digest", ID: DigestID("u:p")},
		{Perms: jute.PermRead, Scheme: "ip", ID: "10.0.0.0/8"}}
	create("/app", []byte("root data"), jute.OpenACL, 0, 0, 1)
	create("/app/nil", nil, jute.OpenACL, 0, 0, 2)
	create("/app/empty", []byte{}, digest, 0, 0, 3)
	create("/app/bin", []byte{0, 0xff, 0, '\n'}, nil, 0, 0, 4)
	create("/app/q", nil, jute.OpenACL, 0, 0, 5)
	for i := 0; i < 4; i++ {
		create("/app/q/n-", nil, jute.OpenACL, jute.FlagSequential, 0, int64(6+i))
	}
	must(tr.Delete("/app/q/n-0000000001", -1, 10, nil))
	create("/app/q/e-", []byte("eph"), jute.OpenACL, jute.FlagSequential|jute.FlagEphemeral, 0x1001, 11)
	create("/app/e", nil, jute.OpenACL, jute.FlagEphemeral, 0x1001, 12)
	create("/e2", []byte("x"), jute.OpenACL, jute.FlagEphemeral, 0x2002, 13)
	create("/a-b", nil, jute.OpenACL, 0, 0, 14) // sorts between /a and /a/...
	create("/app/deep", nil, jute.OpenACL, 0, 0, 15)
	create("/app/deep/er", nil, jute.OpenACL, 0, 0, 16)
	create("/app/deep/er/est", []byte(strings.Repeat("z", 1000)), jute.OpenACL, 0, 0, 17)
	_, err := tr.SetData("/app", []byte("v2"), -1, 18, 1_700_000_000_018, nil)
	must(err)
	_, err = tr.SetData("/app", []byte("v3"), 1, 19, 1_700_000_000_019, nil)
	must(err)
	_, err = tr.SetACL("/app/nil", digest, -1, nil)
	must(err)
	_, err = tr.SetData("/zookeeper/quota", []byte("q"), -1, 20, 1_700_000_000_020, nil)
	must(err)
	tr.TakeChanges()
	return tr
}

func encodeTree(tr *Tree) []byte {
	var e jute.Encoder
	tr.Encode(&e)
	return e.B
}

func TestSnapshotRoundTrip(t *testing.T) {
	orig := richTree(t)
	b := encodeTree(orig)
	d := jute.NewDecoder(b)
	got, err := Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Remaining() != 0 {
		t.Errorf("%d bytes left after Decode", d.Remaining())
	}
	a, c := stateOf(orig), stateOf(got)
	// DataBytes is checked in TestSnapshotRoundTripPreservesDataBytes.
	a.DataBytes, c.DataBytes = 0, 0
	if diff := diffStates(a, c); diff != "" {
		t.Errorf("decoded tree differs:\n%s", diff)
	}
	if len(a.Nodes) != 19 {
		t.Errorf("the original has %d nodes; richTree changed?", len(a.Nodes))
	}

	// The same through the public API, including derived Stat fields.
	for p := range a.Nodes {
		d1, s1, err1 := orig.Get(p, nil)
		d2, s2, err2 := got.Get(p, nil)
		if !bytes.Equal(d1, d2) || (d1 == nil) != (d2 == nil) || s1 != s2 || err1 != err2 {
			t.Errorf("%s: Get %q %+v %v, decoded %q %+v %v", p, d1, s1, err1, d2, s2, err2)
		}
		k1, _, _ := orig.Children(p, nil)
		k2, _, _ := got.Children(p, nil)
		if !reflect.DeepEqual(k1, k2) {
			t.Errorf("%s: children %v, decoded %v", p, k1, k2)
		}
		acl1, _, _ := orig.GetACL(p, nil)
		acl2, _, _ := got.GetACL(p, nil)
		if !reflect.DeepEqual(acl1, acl2) {
			t.Errorf("%s: ACL %v, decoded %v", p, acl1, acl2)
		}
	}
	if !reflect.DeepEqual(got.EphemeralOwners(), []int64{0x1001, 0x2002}) ||
		!reflect.DeepEqual(got.Ephemerals(0x1001), []string{"/app/e", "/app/q/e-0000000004"}) {
		t.Errorf("ephemerals: owners %v, 0x1001 owns %v", got.EphemeralOwners(), got.Ephemerals(0x1001))
	}
	if got.NodeCount() != orig.NodeCount() || got.EphemeralCount() != 3 {
		t.Errorf("NodeCount %d EphemeralCount %d", got.NodeCount(), got.EphemeralCount())
	}
	if got.TakeChanges() != nil {
		t.Error("a decoded tree has pending changes")
	}

	// The decoded tree keeps working: the sequence counter continues and
	// closing a session deletes what it owned.
	for _, tr := range []*Tree{orig, got} {
		p, _, err := tr.Create("/app/q/n-", nil, jute.OpenACL, jute.FlagSequential, 0, 30, 30, nil)
		if err != nil || p != "/app/q/n-0000000005" {
			t.Errorf("sequential create = %q, %v", p, err)
		}
		if closed := tr.CloseSession(0x1001, 31); len(closed) != 2 {
			t.Errorf("CloseSession = %v", closed)
		}
	}
	a, c = stateOf(orig), stateOf(got)
	a.DataBytes, c.DataBytes = 0, 0
	if diff := diffStates(a, c); diff != "" {
		t.Errorf("after the same operations the trees differ:\n%s", diff)
	}

	// Encoding is deterministic: the decoded tree encodes to the same bytes.
	if b2 := encodeTree(mustDecode(t, b)); !bytes.Equal(b, b2) {
		t.Error("re-encoding the decoded tree gives different bytes")
	}
}

func mustDecode(t *testing.T, b []byte) *Tree {
	t.Helper()
	tr, err := Decode(jute.NewDecoder(b))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestSnapshotRoundTripPreservesDataBytes(t *testing.T) {
	for _, tr := range []*Tree{New(), richTree(t)} {
		if got := mustDecode(t, encodeTree(tr)); got.DataBytes() != tr.DataBytes() {
			t.Errorf("DataBytes %d, after a snapshot round trip %d", tr.DataBytes(), got.DataBytes())
		}
	}
}

func TestSnapshotFreshTree(t *testing.T) {
	got := mustDecode(t, encodeTree(New()))
	a, c := stateOf(New()), stateOf(got)
	a.DataBytes, c.DataBytes = 0, 0
	if diff := diffStates(a, c); diff != "" {
		t.Errorf("fresh tree round trip:\n%s", diff)
	}
}

func TestSnapshotDecodeTruncated(t *testing.T) {
	b := encodeTree(richTree(t))
	// Every proper prefix must fail; stepping keeps this fast while still
	// cutting inside every field kind.
	for n := 0; n < len(b); n += 1 + n/64 {
		tr, err := Decode(jute.NewDecoder(b[:n]))
		if err == nil || tr != nil {
			t.Fatalf("Decode of %d of %d bytes: tree %v, err %v", n, len(b), tr != nil, err)
		}
	}
	// The last byte alone matters too.
	if _, err := Decode(jute.NewDecoder(b[:len(b)-1])); err == nil {
		t.Error("Decode without the last byte succeeded")
	}
}

// snapNode is one hand-built snapshot record.
type snapNode struct {
	path string
	data []byte
	stat jute.Stat
}

func encodeNodes(count int64, nodes []snapNode) []byte {
	var e jute.Encoder
	e.Int64(count)
	for _, n := range nodes {
		e.String(n.path)
		e.Buffer(n.data)
		e.ACLs(jute.OpenACL)
		e.Stat(&n.stat)
	}
	return e.B
}

func TestSnapshotDecodeRejects(t *testing.T) {
	root := snapNode{path: "/"}
	tests := []struct {
		name  string
		b     []byte
		error string
	}{
		{"missing parent", encodeNodes(3, []snapNode{root, {path: "/a"}, {path: "/b/c"}}), "no parent"},
		{"child before parent", encodeNodes(3, []snapNode{root, {path: "/a/b"}, {path: "/a"}}), "no parent"},
		{"no root", encodeNodes(1, []snapNode{{path: "/a"}}), "no parent"},
		{"zero nodes", encodeNodes(0, nil), "bad node count"},
		{"negative count", encodeNodes(-1, []snapNode{root}), "bad node count"},
		{"count beyond the data", encodeNodes(1<<40, []snapNode{root}), "bad node count"},
		{"count one too many", encodeNodes(3, []snapNode{root, {path: "/a"}}), "short"},
		{"empty input", nil, "bad node count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Decode(jute.NewDecoder(tt.b))
			if err == nil || tr != nil {
				t.Fatalf("Decode succeeded")
			}
			if !strings.Contains(err.Error(), tt.error) {
				t.Errorf("err = %v, want it to mention %q", err, tt.error)
			}
		})
	}
}

func TestSnapshotDecodeHandBuilt(t *testing.T) {
	// A minimal valid snapshot decodes, rebuilding children and ephemeral
	// ownership from paths and stats alone.
	b := encodeNodes(3, []snapNode{
		{path: "/"},
		{path: "/a", data: []byte("x"), stat: jute.Stat{Czxid: 5, Version: 2, Cversion: 1}},
		{path: "/a/e", stat: jute.Stat{EphemeralOwner: 9}},
	})
	tr := mustDecode(t, b)
	kids, st, err := tr.Children("/a", nil)
	if err != nil || !reflect.DeepEqual(kids, []string{"e"}) {
		t.Fatalf("children of /a = %v, %v", kids, err)
	}
	if st.Czxid != 5 || st.Version != 2 || st.NumChildren != 1 || st.Cversion != 1 || st.DataLength != 1 {
		t.Errorf("/a stat = %+v", st)
	}
	if !reflect.DeepEqual(tr.Ephemerals(9), []string{"/a/e"}) {
		t.Errorf("Ephemerals(9) = %v", tr.Ephemerals(9))
	}
}
