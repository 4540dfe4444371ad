package runner

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Bindings are the run-time namespaces of the Thermos templating language
// (reference §4.5): {{thermos.ports[name]}}, {{thermos.task_id}},
// {{thermos.user}}, {{mesos.instance}} and {{mesos.hostname}}.
type Bindings struct {
	Ports    map[string]int
	TaskID   string
	User     string
	Instance int
	Hostname string
}

var mustache = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)

// Interpolate replaces the run-time references in s. The client resolved
// everything else already, so any mustache left that is not bound here is
// an error, naming the reference; Thermos fails such a task rather than
// running a command with a hole in it.
func (b Bindings) Interpolate(s string) (string, error) {
	var unbound []string
	out := mustache.ReplaceAllStringFunc(s, func(m string) string {
		ref := strings.TrimSpace(m[2 : len(m)-2])
		if v, ok := b.lookup(ref); ok {
			return v
		}
		unbound = append(unbound, ref)
		return m
	})
	if len(unbound) > 0 {
		return "", fmt.Errorf("unbound reference %s", strings.Join(quoteAll(unbound), ", "))
	}
	return out, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "{{" + s + "}}"
	}
	return out
}

func (b Bindings) lookup(ref string) (string, bool) {
	switch ref {
	case "thermos.task_id":
		return b.TaskID, true
	case "thermos.user":
		return b.User, true
	case "mesos.instance":
		return strconv.Itoa(b.Instance), true
	case "mesos.hostname":
		return b.Hostname, true
	}
	// thermos.ports[name], and pystachio's equivalent thermos.ports.name.
	for _, prefix := range []string{"thermos.ports[", "thermos.ports."} {
		if rest, ok := strings.CutPrefix(ref, prefix); ok {
			name := rest
			if prefix[len(prefix)-1] == '[' {
				if !strings.HasSuffix(rest, "]") {
					return "", false
				}
				name = rest[:len(rest)-1]
			}
			if p, ok := b.Ports[strings.TrimSpace(name)]; ok {
				return strconv.Itoa(p), true
			}
			return "", false
		}
	}
	return "", false
}
