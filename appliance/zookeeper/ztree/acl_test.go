package ztree

import (
	"crypto/sha1"
	"encoding/base64"
	"reflect"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

func TestDigestID(t *testing.T) {
	// Computed independently of DigestID: user ":" base64(sha1(user:pass)).
	independent := func(user, pass string) string {
		h := sha1.New()
		h.Write([]byte(user + ":" + pass))
		return user + ":" + base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	for _, c := range []struct{ user, pass string }{
		{"user", "password"},
		{"super", "test"},
		{"alice", ""},
		{"bob", "pa:ss:word"}, // only the first ':' splits
		{"ünï", "cødé"},
	} {
		if got, want := DigestID(c.user+":"+c.pass), independent(c.user, c.pass); got != want {
			t.Errorf("DigestID(%q) = %q, want %q", c.user+":"+c.pass, got, want)
		}
	}
	// The value from Apache ZooKeeper's documentation for the super user
	// with password "test" (zookeeper.DigestAuthenticationProvider.superDigest).
	if got := DigestID("super:test"); got != "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" {
		t.Errorf("DigestID(super:test) = %q", got)
	}
	// No colon: the whole string is the user, and is hashed as given.
	sum := sha1.Sum([]byte("nocolon"))
	if got := DigestID("nocolon"); got != "nocolon:"+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("DigestID(nocolon) = %q", got)
	}
}

func TestFixupACL(t *testing.T) {
	world := jute.ACL{Perms: jute.PermAll, Scheme: "world", ID: "anyone"}
	alice := ID{"digest", "alice:hash="}
	bob := ID{"digest", "bob:hash="}
	ipWho := ID{"ip", "10.0.0.1"}
	tests := []struct {
		name string
		acl  []jute.ACL
		who  *Who
		want []jute.ACL // nil with ok false means ErrInvalidACL
		ok   bool
	}{
		{"world anyone", []jute.ACL{world}, nil, []jute.ACL{world}, true},
		{"world someone else", []jute.ACL{{Perms: 1, Scheme: "world", ID: "everyone"}}, nil, nil, false},
		{"empty list", []jute.ACL{}, nil, nil, false},
		{"nil list", nil, nil, nil, false},
		{"auth expands to digest ids", []jute.ACL{{Perms: jute.PermRead, Scheme: "auth", ID: "ignored"}},
			&Who{IDs: []ID{alice, ipWho, bob}},
			[]jute.ACL{{Perms: jute.PermRead, Scheme: "digest", ID: "alice:hash="}, {Perms: jute.PermRead, Scheme: "digest", ID: "bob:hash="}}, true},
		{"auth with only an ip id", []jute.ACL{{Perms: 31, Scheme: "auth"}}, &Who{IDs: []ID{ipWho}}, nil, false},
		{"auth with no ids", []jute.ACL{{Perms: 31, Scheme: "auth"}}, &Who{}, nil, false},
		{"auth with nil who", []jute.ACL{{Perms: 31, Scheme: "auth"}}, nil, nil, false},
		{"digest", []jute.ACL{{Perms: 3, Scheme: "digest", ID: "u:abc="}}, nil, []jute.ACL{{Perms: 3, Scheme: "digest", ID: "u:abc="}}, true},
		{"digest no colon", []jute.ACL{{Perms: 3, Scheme: "digest", ID: "uabc"}}, nil, nil, false},
		{"digest empty hash", []jute.ACL{{Perms: 3, Scheme: "digest", ID: "u:"}}, nil, nil, false},
		{"digest two colons", []jute.ACL{{Perms: 3, Scheme: "digest", ID: "u:a:b"}}, nil, nil, false},
		{"digest empty", []jute.ACL{{Perms: 3, Scheme: "digest", ID: ""}}, nil, nil, false},
		{"ip address", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "192.168.0.1"}}, nil, []jute.ACL{{Perms: 1, Scheme: "ip", ID: "192.168.0.1"}}, true},
		{"ip cidr", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.0/8"}}, nil, []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.0/8"}}, true},
		{"ip /32", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.1/32"}}, nil, []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.1/32"}}, true},
		{"ip /0", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "0.0.0.0/0"}}, nil, []jute.ACL{{Perms: 1, Scheme: "ip", ID: "0.0.0.0/0"}}, true},
		{"ipv6", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "::1"}}, nil, []jute.ACL{{Perms: 1, Scheme: "ip", ID: "::1"}}, true},
		{"ip bad prefix length", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.0/33"}}, nil, nil, false},
		{"ip empty prefix length", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.0/"}}, nil, nil, false},
		{"ip not a number", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "10.0.0.0/x"}}, nil, nil, false},
		{"ip hostname", []jute.ACL{{Perms: 1, Scheme: "ip", ID: "localhost"}}, nil, nil, false},
		{"ip empty", []jute.ACL{{Perms: 1, Scheme: "ip", ID: ""}}, nil, nil, false},
		{"unknown scheme", []jute.ACL{{Perms: 1, Scheme: "sasl", ID: "x"}}, nil, nil, false},
		{"empty scheme", []jute.ACL{{Perms: 1, Scheme: "", ID: "x"}}, nil, nil, false},
		{"one bad entry fails all", []jute.ACL{world, {Perms: 1, Scheme: "nope", ID: "x"}}, nil, nil, false},
		{"duplicates dropped", []jute.ACL{world, world, {Perms: 1, Scheme: "ip", ID: "1.2.3.4"}, world, {Perms: 1, Scheme: "ip", ID: "1.2.3.4"}}, nil,
			[]jute.ACL{world, {Perms: 1, Scheme: "ip", ID: "1.2.3.4"}}, true},
		{"same id, other perms kept", []jute.ACL{world, {Perms: jute.PermRead, Scheme: "world", ID: "anyone"}}, nil,
			[]jute.ACL{world, {Perms: jute.PermRead, Scheme: "world", ID: "anyone"}}, true},
		{"auth expanding to an explicit entry is deduplicated",
			[]jute.ACL{{Perms: 31, Scheme: "digest", ID: "alice:hash="}, {Perms: 31, Scheme: "auth"}}, &Who{IDs: []ID{alice}},
			[]jute.ACL{{Perms: 31, Scheme: "digest", ID: "alice:hash="}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FixupACL(tt.acl, tt.who)
			if !tt.ok {
				if err != jute.ErrInvalidACL || got != nil {
					t.Errorf("got %v, %v; want ErrInvalidACL", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v\nwant %v", got, err, tt.want)
			}
		})
	}
}

func TestFixupACLDoesNotModifyInput(t *testing.T) {
	in := []jute.ACL{{Perms: 31, Scheme: "auth"}, {Perms: 31, Scheme: "auth"}}
	if _, err := FixupACL(in, &Who{IDs: []ID{{"digest", "a:b"}}}); err != nil {
		t.Fatal(err)
	}
	if in[0].Scheme != "auth" || in[1].Scheme != "auth" {
		t.Errorf("input changed: %v", in)
	}
}

func TestIPMatch(t *testing.T) {
	tests := []struct {
		acl, addr string
		want      bool
	}{
		{"10.0.0.1", "10.0.0.1", true},
		{"10.0.0.1", "10.0.0.2", false},
		{"10.0.0.0/8", "10.255.1.2", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"10.1.2.3/16", "10.1.200.1", true}, // host bits in the ACL are ignored
		{"0.0.0.0/0", "8.8.8.8", true},
		{"::1", "::1", true},
		{"127.0.0.1", "::ffff:127.0.0.1", true}, // a v4-mapped client address
		{"10.0.0.1", "", false},
		{"10.0.0.1", "host", false},
		{"bogus", "10.0.0.1", false},
		{"10.0.0.0/99", "10.0.0.1", false},
	}
	for _, tt := range tests {
		if got := ipMatch(tt.acl, tt.addr); got != tt.want {
			t.Errorf("ipMatch(%q, %q) = %v, want %v", tt.acl, tt.addr, got, tt.want)
		}
	}
}
