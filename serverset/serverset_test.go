package serverset

import (
	"encoding/json"
	"reflect"
	"testing"
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
