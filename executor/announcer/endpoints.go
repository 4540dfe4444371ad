package announcer

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/serverset"
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
func Endpoints(a schema.Announcer, assignedPorts map[string]int, host string) (primary serverset.Endpoint, additional map[string]serverset.Endpoint, err error) {
	primaryName := a.PrimaryPortOrDefault()
	portmap := a.Portmap
	if portmap == nil {
		portmap = map[string]string{DefaultAliasName: "{{primary_port}}"}
	}
	ports, err := resolvePorts(portmap, assignedPorts, primaryName)
	if err != nil {
		return serverset.Endpoint{}, nil, err
	}
	additional = make(map[string]serverset.Endpoint, len(ports))
	for name, port := range ports {
		additional[name] = serverset.Endpoint{Host: host, Port: port}
	}
	return serverset.Endpoint{Host: host, Port: ports[primaryName]}, additional, nil
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
