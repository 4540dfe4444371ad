package announcer

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/aurorabox/aurorabox/thermos/schema"
)

// DefaultBase is the default serverset root (the executor's
// --announcer-serverset-path).
const DefaultBase = "/aurora"

// DefaultAliasName is the alias Aurora's Announcer portmap defines by
// default: {'aurora': '{{primary_port}}'}.
const DefaultAliasName = "aurora"

// ErrPortmapCycle is returned (wrapped) by Endpoints when portmap aliases
// form a cycle.
var ErrPortmapCycle = errors.New("cycle in announcer portmap")

// Endpoint is a host and port, as a ServerSet member carries them.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Member is a ServerSet member znode's content, for readers (tests,
// tooling). Shard is absent for members that do not belong to a sharded
// job, e.g. the scheduler's own registration.
type Member struct {
	ServiceEndpoint     Endpoint            `json:"serviceEndpoint"`
	AdditionalEndpoints map[string]Endpoint `json:"additionalEndpoints"`
	Status              string              `json:"status"`
	Shard               *int                `json:"shard,omitempty"`
}

// ServerSetPath is the serverset of a job under base (DefaultBase when
// empty): <base>/<role>/<environment>/<job>, as Aurora's
// DefaultAnnouncerCheckerProvider.make_zk_path builds it.
func ServerSetPath(base, role, env, job string) string {
	if base == "" {
		base = DefaultBase
	}
	return path.Join("/", base, role, env, job)
}

// primaryMustache is how a portmap value names the primary port: the
// Announcer struct's own primary_port attribute, which pystachio
// interpolates when the executor reads the portmap.
var primaryMustache = regexp.MustCompile(`\{\{\s*primary_port\s*\}\}`)

// Endpoints computes the ServerSet endpoints of a task, as Aurora's
// task_info.resolve_ports and announcer.make_endpoints do:
//
//   - The port map is the Announcer's portmap ({"aurora": "{{primary_port}}"}
//     when a.Portmap is nil) with every "{{primary_port}}" in a value
//     replaced by the primary port's name, overlaid with assignedPorts (an
//     assigned port wins over a portmap entry of the same name).
//   - A value that parses as an integer (surrounding white space allowed,
//     like Python's int()) is a literal port. Any other value is the name
//     of another entry, followed until an integer is reached. A value that
//     names no entry (an unassigned port, an unbound mustache) leaves the
//     entry unresolved and it is dropped, which Aurora only logs.
//   - A cycle anywhere in the map (a→b→a, a→a) is an error wrapping
//     ErrPortmapCycle, even if no endpoint depends on it: Aurora's
//     PortResolver raises CycleException, which fails the task.
//   - primary is the resolved port of primary_port (default "http"), port 0
//     if it is not allocated (Aurora registers 0 then, for auto-registering
//     tasks); additional holds every resolved name, the primary port's name
//     and its aliases included.
func Endpoints(a schema.Announcer, assignedPorts map[string]int, host string) (primary Endpoint, additional map[string]Endpoint, err error) {
	primaryName := a.PrimaryPortOrDefault()
	portmap := a.Portmap
	if portmap == nil {
		portmap = map[string]string{DefaultAliasName: "{{primary_port}}"}
	}
	ports, err := resolvePorts(portmap, assignedPorts, primaryName)
	if err != nil {
		return Endpoint{}, nil, err
	}
	additional = make(map[string]Endpoint, len(ports))
	for name, port := range ports {
		additional[name] = Endpoint{Host: host, Port: port}
	}
	return Endpoint{Host: host, Port: ports[primaryName]}, additional, nil
}

// TaskPorts are the ports a task's processes see as {{thermos.ports[x]}}:
// the assigned ports, plus, with an announcer, its portmap aliases
// resolved as Endpoints resolves them (Aurora's executor hands the
// runner resolve_ports' result). A portmap cycle is an error.
func TaskPorts(a *schema.Announcer, assignedPorts map[string]int) (map[string]int, error) {
	if a == nil {
		return assignedPorts, nil
	}
	portmap := a.Portmap
	if portmap == nil {
		portmap = map[string]string{DefaultAliasName: "{{primary_port}}"}
	}
	return resolvePorts(portmap, assignedPorts, a.PrimaryPortOrDefault())
}

// portValue is a portmap entry: a literal port or the name of another entry.
type portValue struct {
	port  int
	alias string
	isInt bool
}

// resolvePorts is Aurora's PortResolver.resolve plus the integer filter of
// resolve_ports.
func resolvePorts(portmap map[string]string, assignedPorts map[string]int, primaryName string) (map[string]int, error) {
	entries := make(map[string]portValue, len(portmap)+len(assignedPorts))
	for name, v := range portmap {
		v = primaryMustache.ReplaceAllLiteralString(v, primaryName)
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			entries[name] = portValue{port: n, isInt: true}
		} else {
			entries[name] = portValue{alias: v}
		}
	}
	for name, port := range assignedPorts {
		entries[name] = portValue{port: port, isInt: true}
	}

	// Sorted, so that the cycle reported is the same from run to run.
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)

	resolved := make(map[string]int, len(entries))
	for _, name := range names {
		chain := []string{name}
		cur := entries[name]
		for !cur.isInt {
			next, ok := entries[cur.alias]
			if !ok {
				break // names nothing: unresolved
			}
			if slices.Contains(chain, cur.alias) {
				return nil, fmt.Errorf("%w: %s", ErrPortmapCycle, strings.Join(append(chain, cur.alias), " -> "))
			}
			chain = append(chain, cur.alias)
			cur = next
		}
		if cur.isInt {
			resolved[name] = cur.port
		}
	}
	return resolved, nil
}

// MemberJSON renders a ServerSet member as twitter.common.zookeeper's
// ServiceInstance.pack does (Python's json.dumps: ", " and ": " separators,
// non-ASCII escaped), with status ALIVE and the instance id as shard:
//
//	{"serviceEndpoint": {"host": "h", "port": 31337}, "additionalEndpoints": {"aurora": {"host": "h", "port": 31337}, "http": {"host": "h", "port": 31337}}, "status": "ALIVE", "shard": 0}
//
// Keys of additionalEndpoints are sorted, so the output is deterministic.
func MemberJSON(primary Endpoint, additional map[string]Endpoint, shard int) []byte {
	var b []byte
	b = append(b, `{"serviceEndpoint": `...)
	b = appendEndpoint(b, primary)
	b = append(b, `, "additionalEndpoints": {`...)
	names := make([]string, 0, len(additional))
	for name := range additional {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendString(b, name)
		b = append(b, ": "...)
		b = appendEndpoint(b, additional[name])
	}
	b = append(b, `}, "status": "ALIVE", "shard": `...)
	b = strconv.AppendInt(b, int64(shard), 10)
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
