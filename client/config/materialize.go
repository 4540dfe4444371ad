package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// materializer turns an Object tree into plain JSON values (the pystachio
// JSON): defaults filled in, mustaches resolved, scalars coerced to their
// schema types. It collects unbound references instead of failing on
// the first.
type materializer struct {
	in      interpolator
	unbound map[string]bool
	err     error
	pos     syntax.Position // innermost object with a position, for errors
}

func (m *materializer) fail(path, format string, args ...any) {
	if m.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	if m.pos.IsValid() {
		msg = m.pos.String() + ": " + msg
	}
	m.err = fmt.Errorf("%s", msg)
}

func (m *materializer) str(s string, chain []scope, path string) (string, bool) {
	r := m.in.interp(s, chain, 0)
	if m.in.err != nil {
		m.fail(path, "%v", m.in.err)
		m.in.err = nil
		return r, false
	}
	u := unbound(r)
	for _, n := range u {
		m.unbound[n] = true
	}
	return r, len(u) == 0
}

func (m *materializer) object(o *Object, parent []scope, path string) map[string]any {
	if o.pos.IsValid() {
		saved := m.pos
		m.pos = o.pos
		defer func() { m.pos = saved }()
	}
	chain := o.chain(parent)
	out := map[string]any{}
	for _, f := range o.typ.fields {
		v, ok := o.get(f.name)
		if !ok {
			if f.required {
				m.fail(path, "%s.%s is required", o.typ.name, f.name)
			}
			continue
		}
		if r := m.value(v, f.typ, chain, path+"."+f.name); r != nil {
			out[f.name] = r
		}
	}
	return out
}

func (m *materializer) value(v starlark.Value, t *Type, chain []scope, path string) any {
	if m.err != nil || isEmpty(v) {
		return nil
	}
	path = strings.TrimPrefix(path, ".")
	if s, ok := v.(starlark.String); ok && t.kind != kString && t.kind != kChoice {
		r, ok := m.str(string(s), chain, path)
		if !ok {
			return zeroOf(t)
		}
		nv, err := normalize(starlark.String(r), t, path)
		if err != nil {
			m.fail("", "%v", err)
			return nil
		}
		if s2, still := nv.(starlark.String); still && t.kind != kEnum {
			m.fail(path, "%q is not a %s", string(s2), t)
			return nil
		}
		v = nv
	}
	switch t.kind {
	case kString, kEnum:
		s, ok := v.(starlark.String)
		if !ok {
			m.fail(path, "expected %s, got %s", t, v.Type())
			return nil
		}
		r, _ := m.str(string(s), chain, path)
		return r
	case kInteger:
		i, err := starlark.AsInt32(v)
		if err != nil {
			if i64, ok := v.(starlark.Int).Int64(); ok {
				return i64
			}
			m.fail(path, "integer out of range")
			return nil
		}
		return int64(i)
	case kFloat:
		f, _ := starlark.AsFloat(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			m.fail(path, "%v is not a finite number", f)
			return nil
		}
		return f
	case kBoolean:
		return bool(v.(starlark.Bool))
	case kList:
		l, ok := v.(*starlark.List)
		if !ok {
			m.fail(path, "expected %s, got %s", t, v.Type())
			return nil
		}
		out := []any{}
		for i := 0; i < l.Len(); i++ {
			r := m.value(l.Index(i), t.elem, chain, fmt.Sprintf("%s[%d]", path, i))
			if r == nil && m.err != nil {
				return nil
			}
			out = append(out, r)
		}
		return out
	case kMap:
		d, ok := v.(*starlark.Dict)
		if !ok {
			m.fail(path, "expected %s, got %s", t, v.Type())
			return nil
		}
		out := map[string]any{}
		for _, it := range d.Items() {
			k := m.value(it[0], t.key, chain, path)
			out[fmt.Sprint(k)] = m.value(it[1], t.elem, chain, fmt.Sprintf("%s[%s]", path, k))
		}
		return out
	case kStruct:
		o, ok := v.(*Object)
		if !ok {
			m.fail(path, "expected %s, got %s", t, v.Type())
			return nil
		}
		return m.object(o, chain, path)
	case kChoice:
		if o, ok := v.(*Object); ok {
			return m.object(o, chain, path)
		}
		if s, ok := v.(starlark.String); ok {
			r, ok := m.str(string(s), chain, path)
			if !ok {
				return r
			}
			for _, c := range t.choices {
				if c.kind == kStruct || c.kind == kList || c.kind == kMap {
					continue
				}
				if nv, err := normalize(starlark.String(r), c, path); err == nil {
					return m.value(nv, c, chain, path)
				}
			}
			return r
		}
		for _, c := range t.choices {
			if nv, err := normalize(v, c, path); err == nil {
				return m.value(nv, c, chain, path)
			}
		}
		m.fail(path, "expected %s, got %s", t, v.Type())
	}
	return nil
}

func zeroOf(t *Type) any {
	switch t.kind {
	case kInteger:
		return int64(0)
	case kFloat:
		return 0.0
	case kBoolean:
		return false
	}
	return nil
}

// withOverrides returns job with the --bind overrides as its newest bindings.
func withOverrides(job *Object, overrides map[string]string) (*Object, error) {
	if len(overrides) == 0 {
		return job, nil
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := job.clone(syntax.Position{})
	var nb []binding
	for _, k := range keys {
		ref, err := parseRef(k)
		if err != nil {
			return nil, fmt.Errorf("--bind %s: %v", k, err)
		}
		nb = append(nb, binding{ref: ref, val: starlark.String(overrides[k])})
	}
	n.binds = append(nb, n.binds...)
	return n, nil
}

// keyField interpolates one string field of a job on its own (for
// listing jobs whose full materialization failed).
func keyField(job *Object, overrides map[string]string, name string) string {
	job, err := withOverrides(job, overrides)
	if err != nil {
		return ""
	}
	v, ok := job.get(name)
	if !ok {
		return ""
	}
	m := &materializer{unbound: map[string]bool{}}
	s, _ := m.value(v, tString, job.chain(nil), name).(string)
	return s
}

// materialize interpolates a job with the --bind overrides on top.
func materialize(job *Object, overrides map[string]string) (map[string]any, error) {
	job, err := withOverrides(job, overrides)
	if err != nil {
		return nil, err
	}
	m := &materializer{unbound: map[string]bool{}}
	out := m.object(job, nil, "")
	if m.err != nil {
		return nil, m.err
	}
	if len(m.unbound) > 0 {
		var names []string
		for n := range m.unbound {
			names = append(names, n)
		}
		sort.Strings(names)
		var hints []string
		for _, n := range names {
			hints = append(hints, "--bind "+n+"=...")
		}
		msg := fmt.Sprintf("config contains unbound variables: %s (bind them with %s)", strings.Join(names, ", "), strings.Join(hints, " "))
		if job.pos.IsValid() {
			msg = job.pos.String() + ": " + msg
		}
		return out, &UnboundError{Names: names, msg: msg}
	}
	return out, nil
}

// UnboundError is returned when a selected job still holds {{references}}
// that neither the file nor --bind define.
type UnboundError struct {
	Names []string // the unbound references
	msg   string
}

func (e *UnboundError) Error() string { return e.msg }

// fromJSON converts decoded JSON into Starlark values.
func fromJSON(v any) (starlark.Value, error) {
	switch v := v.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(v), nil
	case string:
		return starlark.String(v), nil
	case jsonNumber:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return starlark.MakeInt64(i), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, err
		}
		return starlark.Float(f), nil
	case []any:
		var out []starlark.Value
		for _, e := range v {
			x, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return starlark.NewList(out), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(v))
		for _, k := range keys {
			x, err := fromJSON(v[k])
			if err != nil {
				return nil, err
			}
			_ = d.SetKey(starlark.String(k), x)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}
