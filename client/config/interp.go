package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
)

// parseRef splits a mustache reference such as profile.cmd, fib[4],
// first[Kent] or thermos.ports[http] into its components; .x and [x] are
// both a step into a struct field, list index or map key.
func parseRef(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	var out []string
	i := 0
	for i < len(s) {
		switch s[i] {
		case '.':
			if i == 0 || i == len(s)-1 {
				return nil, fmt.Errorf("bad reference %q", s)
			}
			i++
		case '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 || j == 1 {
				return nil, fmt.Errorf("bad reference %q", s)
			}
			out = append(out, s[i+1:i+j])
			i += j + 1
		default:
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' {
				if s[j] == ']' || s[j] == ' ' {
					return nil, fmt.Errorf("bad reference %q", s)
				}
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty reference")
	}
	return out, nil
}

// scope is one link of the chain a mustache is looked up in: an object's
// bindings, or its own fields (whose values are interpolated in the
// object's chain, self).
type scope struct {
	binds []binding
	obj   *Object
	self  []scope
}

// chain returns o's scopes (its bindings, newest first, then its own
// fields) followed by the parent's.
func (o *Object) chain(parent []scope) []scope {
	c := make([]scope, 0, 2+len(parent))
	if len(o.binds) > 0 {
		c = append(c, scope{binds: o.binds})
	}
	c = append(c, scope{obj: o})
	c = append(c, parent...)
	for i := range c {
		if c[i].obj == o && c[i].self == nil {
			c[i].self = c
			break
		}
	}
	return c
}

// runtime reports whether a reference is filled in on the agent
// ({{thermos.*}} by the runner, {{mesos.*}} by the executor).
func runtime(ref string) bool {
	return strings.HasPrefix(ref, "thermos.") || strings.HasPrefix(ref, "mesos.") || ref == "thermos" || ref == "mesos"
}

// aliases are Aurora's standard rewrites.
var aliases = map[string]string{
	"mesos.role":    "{{role}}",
	"mesos.cluster": "{{cluster}}",
	"thermos.user":  "{{role}}",
}

// lookup finds ref in the chain. vchain is the chain the found value's
// own mustaches are resolved in (nil: the referencing chain).
func lookup(ref []string, chain []scope) (v starlark.Value, vchain []scope, found bool) {
	for _, sc := range chain {
		if sc.obj != nil {
			f, ok := sc.obj.get(ref[0])
			if !ok {
				continue
			}
			if v, vc, ok := descend(f, ref[1:], sc.self); ok {
				return v, vc, true
			}
			continue
		}
		for _, b := range sc.binds {
			if len(b.ref) > len(ref) || !equalPrefix(b.ref, ref) {
				continue
			}
			if v, vc, ok := descend(b.val, ref[len(b.ref):], nil); ok {
				return v, vc, true
			}
		}
	}
	return nil, nil, false
}

func equalPrefix(p, s []string) bool {
	for i := range p {
		if p[i] != s[i] {
			return false
		}
	}
	return true
}

func descend(v starlark.Value, rest []string, vchain []scope) (starlark.Value, []scope, bool) {
	if len(rest) == 0 {
		return v, vchain, true
	}
	switch x := v.(type) {
	case *Object:
		f, ok := x.get(rest[0])
		if !ok {
			return nil, nil, false
		}
		c := x.chain(vchain)
		return descend(f, rest[1:], c[len(c)-len(vchain)-1].self)
	case *starlark.List:
		i, err := strconv.Atoi(rest[0])
		if err != nil || i < 0 || i >= x.Len() {
			return nil, nil, false
		}
		return descend(x.Index(i), rest[1:], vchain)
	case starlark.Tuple:
		i, err := strconv.Atoi(rest[0])
		if err != nil || i < 0 || i >= x.Len() {
			return nil, nil, false
		}
		return descend(x.Index(i), rest[1:], vchain)
	case *starlark.Dict:
		e, found, _ := x.Get(starlark.String(rest[0]))
		if !found {
			if i, err := strconv.Atoi(rest[0]); err == nil {
				e, found, _ = x.Get(starlark.MakeInt(i))
			}
		}
		if !found {
			return nil, nil, false
		}
		return descend(e, rest[1:], vchain)
	}
	return nil, nil, false
}

var mustacheRe = regexp.MustCompile(`\{\{([^{}]*)\}\}`)

const maxDepth = 50

// maxResolutions bounds the work of interpolating one job, so that
// references that expand exponentially ({{a}} = '{{b}}{{b}}', ...) fail
// instead of running for ever.
const maxResolutions = 200_000

type interpolator struct {
	err   error
	steps int
}

// interp resolves the mustaches of s in chain, innermost first and
// repeatedly, leaving the ones it cannot resolve in place.
func (in *interpolator) interp(s string, chain []scope, depth int) string {
	if !strings.Contains(s, "{{") || in.err != nil {
		return s
	}
	if depth > maxDepth {
		in.err = fmt.Errorf("mustaches nest too deeply in %q (a reference cycle?)", s)
		return s
	}
	var lits []string
	for pass := 0; ; pass++ {
		locs := mustacheRe.FindAllStringSubmatchIndex(s, -1)
		if len(locs) == 0 {
			break
		}
		if pass > maxDepth || len(s) > 1<<20 || in.err != nil {
			if in.err != nil {
				return s
			}
			in.err = fmt.Errorf("mustaches expand without end in %.80q (a reference cycle?)", s)
			return s
		}
		var b strings.Builder
		last := 0
		for _, l := range locs {
			name := strings.TrimSpace(s[l[2]:l[3]])
			b.WriteString(s[last:l[0]])
			last = l[1]
			if r, ok := in.resolve(name, chain, depth); ok {
				b.WriteString(r)
				continue
			}
			b.WriteString("\x00" + strconv.Itoa(len(lits)) + "\x00")
			lits = append(lits, "{{"+name+"}}")
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	for i := len(lits) - 1; i >= 0; i-- {
		s = strings.ReplaceAll(s, "\x00"+strconv.Itoa(i)+"\x00", lits[i])
	}
	return s
}

func (in *interpolator) resolve(name string, chain []scope, depth int) (string, bool) {
	if in.steps++; in.steps > maxResolutions {
		if in.err == nil {
			in.err = fmt.Errorf("mustaches expand too much (more than %d references resolved)", maxResolutions)
		}
		return "", false
	}
	if strings.Contains(name, "\x00") {
		return "", false
	}
	ref, err := parseRef(name)
	if err != nil {
		return "", false
	}
	v, vchain, ok := lookup(ref, chain)
	if !ok {
		if a, ok := aliases[name]; ok {
			return a, true
		}
		return "", false
	}
	switch v := v.(type) {
	case starlark.String:
		if vchain == nil {
			return string(v), true
		}
		return in.interp(string(v), vchain, depth+1), true
	case starlark.Int, starlark.Float:
		return v.String(), true
	case starlark.Bool:
		if v {
			return "True", true
		}
		return "False", true
	case emptyValue, starlark.NoneType:
		return "", false
	}
	if in.err == nil {
		in.err = fmt.Errorf("{{%s}} is a %s, not a string or number", name, v.Type())
	}
	return "", false
}

// unbound lists the references left in s that nothing will fill in.
func unbound(s string) []string {
	var out []string
	for _, m := range mustacheRe.FindAllStringSubmatch(s, -1) {
		name := strings.TrimSpace(m[1])
		if !runtime(name) {
			out = append(out, name)
		}
	}
	return out
}
