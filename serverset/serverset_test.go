package serverset

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

func TestMarshal(t *testing.T) {
	shard := 3
	m := Member{
		ServiceEndpoint: Endpoint{Host: "agent1", Port: 31337},
		AdditionalEndpoints: map[string]Endpoint{
			"http":   {Host: "agent1", Port: 31337},
			"aurora": {Host: "agent1", Port: 31337},
			"health": {Host: "agent1", Port: 31338},
		},
		Status: Alive,
		Shard:  &shard,
	}
	got := string(Marshal(m))
	want := `{"serviceEndpoint": {"host": "agent1", "port": 31337}, "additionalEndpoints": {` +
		`"aurora": {"host": "agent1", "port": 31337}, "health": {"host": "agent1", "port": 31338}, ` +
		`"http": {"host": "agent1", "port": 31337}}, "status": "ALIVE", "shard": 3}`
	if got != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
	for _, c := range []struct {
		m    Member
		want string
	}{
		{Member{ServiceEndpoint: Endpoint{Host: "h"}, Status: Alive, Shard: new(int)},
			`{"serviceEndpoint": {"host": "h", "port": 0}, "additionalEndpoints": {}, "status": "ALIVE", "shard": 0}`},
		// The scheduler's own registration: no shard.
		{Member{ServiceEndpoint: Endpoint{Host: "s", Port: 8081}, AdditionalEndpoints: map[string]Endpoint{"http": {Host: "s", Port: 8081}}, Status: Alive},
			`{"serviceEndpoint": {"host": "s", "port": 8081}, "additionalEndpoints": {"http": {"host": "s", "port": 8081}}, "status": "ALIVE"}`},
	} {
		if got := string(Marshal(c.m)); got != c.want {
			t.Errorf("Marshal(%+v) =\n%s\nwant\n%s", c.m, got, c.want)
		}
	}
}

// TestRoundTrip checks every field through Marshal and Parse, and that
// encoding/json reads Marshal's output the same way.
func TestRoundTrip(t *testing.T) {
	shard := 7
	for _, m := range []Member{
		{ServiceEndpoint: Endpoint{Host: "héllo\U0001F600\"\\", Port: 1},
			AdditionalEndpoints: map[string]Endpoint{"a\tb": {Host: "x", Port: 2}, "http": {Host: "y", Port: 65535}},
			Status:              "DEAD", Shard: &shard},
		{ServiceEndpoint: Endpoint{Host: "s", Port: 8081}, AdditionalEndpoints: map[string]Endpoint{}, Status: Alive},
	} {
		b := Marshal(m)
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %+v gave %+v (%s)", m, got, b)
		}
		var std Member
		if err := json.Unmarshal(b, &std); err != nil || !reflect.DeepEqual(std, m) {
			t.Errorf("encoding/json read %s as %+v, %v", b, std, err)
		}
	}
	if _, err := Parse([]byte(`{"serviceEndpoint": 1}`)); err == nil {
		t.Error("Parse accepted a member whose serviceEndpoint is a number")
	}
}

func TestEscapesLikePython(t *testing.T) {
	// json.dumps(u'...') with ensure_ascii=True.
	for in, want := range map[string]string{
		`a"b\c`:       `"a\"b\\c"`,
		"tab\tnl\n":   `"tab\tnl\n"`,
		"\x01\x7f":    `"\u0001\u007f"`,
		"héllo":       `"h\u00e9llo"`,
		"\U0001F600":  `"\ud83d\ude00"`,
		"<tag>&amp;":  `"<tag>&amp;"`,
		"bad\xffutf8": `"bad\ufffdutf8"`,
	} {
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, in), &back); err != nil {
			t.Errorf("%q: invalid JSON: %v", in, err)
		}
	}
}

// fakeZK is a ServerSet's znodes: children of one path and their data; a
// child without data went away between the listing and the read.
type fakeZK struct {
	children []string
	data     map[string][]byte
}

func (f fakeZK) Children(path string) ([]string, *zk.Stat, error) {
	if f.children == nil {
		return nil, nil, zk.ErrNoNode
	}
	return f.children, &zk.Stat{}, nil
}

func (f fakeZK) Get(path string) ([]byte, *zk.Stat, error) {
	d, ok := f.data[path]
	if !ok {
		return nil, nil, zk.ErrNoNode
	}
	return d, &zk.Stat{EphemeralOwner: int64(len(d))}, nil
}

// Nodes lists member_ znodes in sequence order, skips other children and
// members gone while read, and says when the ServerSet does not exist.
func TestNodes(t *testing.T) {
	f := fakeZK{
		children: []string{"member_0000000002", "leader", "member_0000000000", "member_0000000001"},
		data: map[string][]byte{
			"/aurora/s/member_0000000000": []byte("a"),
			"/aurora/s/member_0000000002": []byte("cc"),
			"/aurora/s/leader":            []byte("x"),
		},
	}
	nodes, err := Nodes(f, "/aurora/s/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, n.Path+"="+string(n.Data))
	}
	if strings.Join(got, " ") != "/aurora/s/member_0000000000=a /aurora/s/member_0000000002=cc" || nodes[1].Stat.EphemeralOwner != 2 {
		t.Fatalf("nodes %v", got)
	}
	if _, err := Nodes(fakeZK{}, "/nowhere"); !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("missing ServerSet: %v, want ErrNoNode", err)
	}
}
