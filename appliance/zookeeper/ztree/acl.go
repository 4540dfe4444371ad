package ztree

import (
	"crypto/sha1"
	"encoding/base64"
	"net"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
)

// DigestID returns the digest-scheme id for "user:password":
// user:base64(sha1("user:password")), as DigestAuthenticationProvider does.
func DigestID(userPassword string) string {
	user, _, _ := strings.Cut(userPassword, ":")
	sum := sha1.Sum([]byte(userPassword))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// FixupACL validates an ACL from a create or setACL and expands the "auth"
// scheme into the session's authenticated ids, as PrepRequestProcessor's
// fixupACL does. Duplicates are dropped.
func FixupACL(acl []jute.ACL, who *Who) ([]jute.ACL, error) {
	if len(acl) == 0 {
		return nil, jute.ErrInvalidACL
	}
	var out []jute.ACL
	add := func(a jute.ACL) {
		for _, x := range out {
			if x == a {
				return
			}
		}
		out = append(out, a)
	}
	for _, a := range acl {
		switch a.Scheme {
		case "world":
			if a.ID != "anyone" {
				return nil, jute.ErrInvalidACL
			}
			add(a)
		case "auth":
			found := false
			if who != nil {
				for _, id := range who.IDs {
					if id.Scheme == "digest" { // ip is not an "authenticated" provider
						add(jute.ACL{Perms: a.Perms, Scheme: id.Scheme, ID: id.ID})
						found = true
					}
				}
			}
			if !found {
				return nil, jute.ErrInvalidACL
			}
		case "digest":
			if u, h, ok := strings.Cut(a.ID, ":"); !ok || u == "" || h == "" || strings.Contains(h, ":") {
				return nil, jute.ErrInvalidACL
			}
			add(a)
		case "ip":
			if !validIP(a.ID) {
				return nil, jute.ErrInvalidACL
			}
			add(a)
		default:
			return nil, jute.ErrInvalidACL
		}
	}
	return out, nil
}

func validIP(s string) bool {
	addr, bits, hasBits := strings.Cut(s, "/")
	if net.ParseIP(addr) == nil {
		return false
	}
	if hasBits {
		_, _, err := net.ParseCIDR(s)
		return err == nil && bits != ""
	}
	return true
}

// ipMatch reports whether client address addr falls in the ACL's ip id,
// an address or a CIDR block.
func ipMatch(aclID, addr string) bool {
	ip := net.ParseIP(addr)
	if ip == nil {
		return false
	}
	if strings.Contains(aclID, "/") {
		_, n, err := net.ParseCIDR(aclID)
		return err == nil && n.Contains(ip)
	}
	want := net.ParseIP(aclID)
	return want != nil && want.Equal(ip)
}
