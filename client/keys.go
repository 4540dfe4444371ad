package client

import (
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

var goodIdentifier = regexp.MustCompile(`^[\w\-\.]+$`)

// JobKey is a job key with its cluster: CLUSTER/ROLE/ENV/NAME.
type JobKey struct {
	Cluster string
	api.JobKey
}

func (k JobKey) String() string { return k.Cluster + "/" + k.JobKey.String() }

// ParseJobKey parses CLUSTER/ROLE/ENV/NAME, saying which part is wrong.
func ParseJobKey(s string) (JobKey, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return JobKey{}, Errorf(ExitInvalidParameter, "Invalid job key %q: want CLUSTER/ROLE/ENV/NAME", s)
	}
	for i, what := range []string{"cluster", "role", "environment", "name"} {
		if !goodIdentifier.MatchString(parts[i]) {
			return JobKey{}, Errorf(ExitInvalidParameter, "Invalid job key %q: %s %q may only contain letters, digits, '_', '-' and '.'", s, what, parts[i])
		}
	}
	return JobKey{Cluster: parts[0], JobKey: api.JobKey{Role: parts[1], Environment: parts[2], Name: parts[3]}}, nil
}

// ParseInstanceSpec parses CLUSTER/ROLE/ENV/NAME[/INSTANCES], INSTANCES a
// comma list of ids and inclusive ranges (0,1-3,5). No instances means all.
func ParseInstanceSpec(s string) (JobKey, []int, error) {
	parts := strings.Split(s, "/")
	if len(parts) == 5 {
		k, err := ParseJobKey(strings.Join(parts[:4], "/"))
		if err != nil {
			return JobKey{}, nil, err
		}
		ids, err := ParseInstances(parts[4])
		if err != nil {
			return JobKey{}, nil, Errorf(ExitInvalidParameter, "Invalid instance spec %q: %v", s, err)
		}
		return k, ids, nil
	}
	k, err := ParseJobKey(s)
	return k, nil, err
}

// ParseInstances parses "0,1-3,5" into sorted distinct ids.
func ParseInstances(s string) ([]int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, Errorf(ExitInvalidParameter, "bad instance %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, Errorf(ExitInvalidParameter, "bad instance range %q", part)
			}
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out, nil
}

// ParseTaskInstance parses CLUSTER/ROLE/ENV/NAME/INSTANCE.
func ParseTaskInstance(s string) (JobKey, int, error) {
	k, ids, err := ParseInstanceSpec(s)
	if err != nil {
		return JobKey{}, 0, err
	}
	if len(ids) != 1 || strings.ContainsAny(s[strings.LastIndexByte(s, '/')+1:], ",-") {
		return JobKey{}, 0, Errorf(ExitInvalidParameter, "Invalid task instance %q: want CLUSTER/ROLE/ENV/NAME/INSTANCE", s)
	}
	return k, ids[0], nil
}

// Wildcard is cluster[/role[/env[/name]]] with shell globs; missing parts
// match anything.
type Wildcard struct {
	Cluster                 string
	Role, Environment, Name string
}

// ParseWildcard parses a wildcard job key.
func ParseWildcard(s string) (Wildcard, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 4 || parts[0] == "" {
		return Wildcard{}, Errorf(ExitInvalidParameter, "Invalid job key pattern %q: want cluster[/role[/env[/name]]]", s)
	}
	for len(parts) < 4 {
		parts = append(parts, "*")
	}
	return Wildcard{parts[0], parts[1], parts[2], parts[3]}, nil
}

// Match reports whether k is selected.
func (w Wildcard) Match(k api.JobKey) bool {
	for _, p := range [][2]string{{w.Role, k.Role}, {w.Environment, k.Environment}, {w.Name, k.Name}} {
		if ok, _ := path.Match(p[0], p[1]); !ok {
			return false
		}
	}
	return true
}

// ExactRole is the role when it has no glob, else "".
func (w Wildcard) ExactRole() string { return exact(w.Role) }

// Query is the narrowest task query that selects every task the
// wildcard may match: the parts without globs (a whole job key when
// none has one); Match then filters the rest.
func (w Wildcard) Query() api.TaskQuery {
	return api.TaskQuery{Role: exact(w.Role), Environment: exact(w.Environment), JobName: exact(w.Name)}
}

// exact is p when it has no glob, else "".
func exact(p string) string {
	if strings.ContainsAny(p, "*?[") {
		return ""
	}
	return p
}
