// Package serverset owns the ServerSet member format: the JSON a member_
// znode of a ZooKeeper ServerSet holds (twitter.common.zookeeper's
// ServiceInstance, read by Finagle, twitter.common and Aurora's client).
// The executor's announcer writes one per task that has an Announcer, the
// scheduler one for itself when it leads; the client, the scheduler's
// election and the announcer's stale-member reclaim read them.
//
//	{"serviceEndpoint": {"host": "h", "port": 31337}, "additionalEndpoints": {"aurora": {"host": "h", "port": 31337}}, "status": "ALIVE", "shard": 0}
package serverset

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/go-zookeeper/zk"
)

// Alive is the status of a member that serves.
const Alive = "ALIVE"

// Endpoint is a host and port.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Member is a member znode's content. Shard is absent for members that do
// not belong to a sharded job, e.g. the scheduler's own registration.
type Member struct {
	ServiceEndpoint     Endpoint            `json:"serviceEndpoint"`
	AdditionalEndpoints map[string]Endpoint `json:"additionalEndpoints"`
	Status              string              `json:"status"`
	Shard               *int                `json:"shard,omitempty"`
}

// Parse reads a member znode's content.
func Parse(data []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(data, &m); err != nil {
		return Member{}, fmt.Errorf("serverset member: %w", err)
	}
	return m, nil
}

// Marshal renders m as ServiceInstance.pack does (Python's json.dumps:
// ", " and ": " separators, non-ASCII escaped). Keys of
// additionalEndpoints are sorted, so the output is deterministic; shard is
// left out when nil.
func Marshal(m Member) []byte {
	var b []byte
	b = append(b, `{"serviceEndpoint": `...)
	b = appendEndpoint(b, m.ServiceEndpoint)
	b = append(b, `, "additionalEndpoints": {`...)
	names := make([]string, 0, len(m.AdditionalEndpoints))
	for name := range m.AdditionalEndpoints {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, name)
		b = append(b, ": "...)
		b = appendEndpoint(b, m.AdditionalEndpoints[name])
	}
	b = append(b, `}, "status": `...)
	b = appendString(b, m.Status)
	if m.Shard != nil {
		b = append(b, `, "shard": `...)
		b = strconv.AppendInt(b, int64(*m.Shard), 10)
	}
	return append(b, '}')
}

func appendEndpoint(b []byte, e Endpoint) []byte {
	b = append(b, `{"host": `...)
	b = appendString(b, e.Host)
	b = append(b, `, "port": `...)
	b = strconv.AppendInt(b, int64(e.Port), 10)
	return append(b, '}')
}

// appendString quotes s as Python's json.dumps does with ensure_ascii:
// printable ASCII as is, everything else escaped (lower-case hex,
// surrogate pairs above U+FFFF). Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u4 := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r >= ' ' && r <= '~':
			b = append(b, byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			b = u4(u4(b, r1), r2)
		default:
			b = u4(b, r)
		}
	}
	return append(b, '"')
}

// MemberPrefix names the member znodes of a ServerSet (EPHEMERAL_SEQUENTIAL:
// member_<10-digit sequence>).
const MemberPrefix = "member_"

// Reader is what Nodes needs of a ZooKeeper connection (go-zookeeper's
// *zk.Conn).
type Reader interface {
	Children(path string) ([]string, *zk.Stat, error)
	Get(path string) ([]byte, *zk.Stat, error)
}

// Node is a member znode as read: its path, content and Stat.
type Node struct {
	Path string
	Data []byte
	Stat *zk.Stat
}

// Nodes reads the member znodes under path in sequence order; a node that
// goes while they are read is left out. A missing path is an error that
// wraps zk.ErrNoNode.
func Nodes(conn Reader, path string) ([]Node, error) {
	children, _, err := conn.Children(path)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", path, err)
	}
	slices.Sort(children)
	var out []Node
	for _, c := range children {
		if !strings.HasPrefix(c, MemberPrefix) {
			continue
		}
		p := strings.TrimSuffix(path, "/") + "/" + c
		data, stat, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", p, err)
		}
		out = append(out, Node{Path: p, Data: data, Stat: stat})
	}
	return out, nil
}
