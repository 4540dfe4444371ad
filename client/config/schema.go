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

// kind is the kind of a pystachio type.
type kind int

const (
	kString kind = iota
	kInteger
	kFloat
	kBoolean
	kList
	kMap
	kStruct
	kChoice
	kEnum
)

// Type is a pystachio type as a Starlark value: String, Integer, Float,
// Boolean, List(T), Map(K, V), Choice([...]), an Enum, or a Struct schema
// (Process, Job, a user's class Profile(Struct), ...). Struct types and
// enums are callable.
type Type struct {
	kind    kind
	name    string
	elem    *Type // List element, Map value
	key     *Type // Map key
	choices []*Type
	fields  []*Field
	index   map[string]*Field
	parent  *Type // class inheritance
	enum    []string
}

// Field is one field of a Struct type.
type Field struct {
	name     string
	typ      *Type
	def      starlark.Value // nil: Empty
	required bool
}

var (
	tString  = &Type{kind: kString, name: "String"}
	tInteger = &Type{kind: kInteger, name: "Integer"}
	tFloat   = &Type{kind: kFloat, name: "Float"}
	tBoolean = &Type{kind: kBoolean, name: "Boolean"}
	// tStruct is the base of user classes: class Profile(Struct).
	tStruct = &Type{kind: kStruct, name: "Struct", index: map[string]*Field{}}
)

func listOf(t *Type) *Type     { return &Type{kind: kList, elem: t} }
func mapOf(k, v *Type) *Type   { return &Type{kind: kMap, key: k, elem: v} }
func choice(ts ...*Type) *Type { return &Type{kind: kChoice, choices: ts} }
func enumOf(name string, values ...string) *Type {
	return &Type{kind: kEnum, name: name, enum: values}
}

func (t *Type) String() string {
	switch t.kind {
	case kList:
		return "List(" + t.elem.String() + ")"
	case kMap:
		return "Map(" + t.key.String() + ", " + t.elem.String() + ")"
	case kChoice:
		var s []string
		for _, c := range t.choices {
			s = append(s, c.String())
		}
		return "Choice([" + strings.Join(s, ", ") + "])"
	}
	return t.name
}

// Type implements starlark.Value.
func (t *Type) Type() string { return "type" }

// Freeze implements starlark.Value.
func (t *Type) Freeze() {}

// Truth implements starlark.Value.
func (t *Type) Truth() starlark.Bool { return true }

// Hash implements starlark.Value.
func (t *Type) Hash() (uint32, error) { return starlark.String(t.String()).Hash() }

// Name implements starlark.Callable.
func (t *Type) Name() string { return t.String() }

// CallInternal constructs a struct, checks an enum value, or coerces a
// scalar (String(5) is '5').
func (t *Type) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if t.kind == kStruct {
		o := &Object{typ: t, vals: map[string]starlark.Value{}, pos: callerPos(thread)}
		if err := o.update(args, kwargs); err != nil {
			return nil, err
		}
		return o, nil
	}
	if len(args) != 1 || len(kwargs) != 0 {
		return nil, fmt.Errorf("%s: want exactly one positional argument", t)
	}
	return normalize(args[0], t, t.String())
}

// newStruct declares a struct type with fields in order.
func newStruct(name string, parent *Type, fields ...*Field) *Type {
	t := &Type{kind: kStruct, name: name, parent: parent, index: map[string]*Field{}}
	if parent != nil {
		for _, f := range parent.fields {
			if _, over := findField(fields, f.name); !over {
				t.addField(f)
			}
		}
	}
	for _, f := range fields {
		t.addField(f)
	}
	return t
}

func findField(fs []*Field, name string) (*Field, bool) {
	for _, f := range fs {
		if f.name == name {
			return f, true
		}
	}
	return nil, false
}

func (t *Type) addField(f *Field) {
	if old, ok := t.index[f.name]; ok {
		*old = *f
		return
	}
	t.fields = append(t.fields, f)
	t.index[f.name] = f
}

func (t *Type) fieldNames() []string {
	var s []string
	for _, f := range t.fields {
		s = append(s, f.name)
	}
	return s
}

// derives reports whether t is u or a subclass of u.
func (t *Type) derives(u *Type) bool {
	for ; t != nil; t = t.parent {
		if t == u {
			return true
		}
	}
	return false
}

// Schema field constructors for the built-in schema.
func req(name string, t *Type) *Field { return &Field{name: name, typ: t, required: true} }
func opt(name string, t *Type) *Field { return &Field{name: name, typ: t} }
func def(name string, t *Type, v any) *Field {
	f := &Field{name: name, typ: t}
	switch v := v.(type) {
	case string:
		f.def = starlark.String(v)
	case int:
		f.def = starlark.MakeInt(v)
	case float64:
		f.def = starlark.Float(v)
	case bool:
		f.def = starlark.Bool(v)
	case starlark.Value:
		f.def = v
	default:
		panic(fmt.Sprintf("bad default %T", v))
	}
	return f
}

// fieldSpec is what Default(T, v) and Required(T) return in a class body.
type fieldSpec struct {
	typ      *Type
	def      starlark.Value
	required bool
}

func (s *fieldSpec) String() string {
	if s.required {
		return "Required(" + s.typ.String() + ")"
	}
	if s.def != nil {
		return "Default(" + s.typ.String() + ", " + s.def.String() + ")"
	}
	return s.typ.String()
}
func (s *fieldSpec) Type() string          { return "TypeSignature" }
func (s *fieldSpec) Freeze()               {}
func (s *fieldSpec) Truth() starlark.Bool  { return true }
func (s *fieldSpec) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: TypeSignature") }

// emptyValue is pystachio's Empty: an unset field.
type emptyValue struct{}

// Empty is the Starlark value of pystachio's Empty.
var Empty starlark.Value = emptyValue{}

func (emptyValue) String() string        { return "Empty" }
func (emptyValue) Type() string          { return "Empty" }
func (emptyValue) Freeze()               {}
func (emptyValue) Truth() starlark.Bool  { return false }
func (emptyValue) Hash() (uint32, error) { return 0, nil }

func isEmpty(v starlark.Value) bool { return v == nil || v == Empty || v == starlark.None }

// binding is one .bind() entry: a reference path and its value.
type binding struct {
	ref []string
	val starlark.Value
}

// Object is an instance of a Struct type. It is immutable: calling it
// with keyword arguments, or .bind(), returns a modified copy.
type Object struct {
	typ   *Type
	vals  map[string]starlark.Value // explicitly set fields (Empty: unset over a default)
	binds []binding                 // newest first
	pos   syntax.Position           // where it was made, for error messages
}

func (o *Object) clone(pos syntax.Position) *Object {
	n := &Object{typ: o.typ, vals: make(map[string]starlark.Value, len(o.vals)), pos: pos}
	for k, v := range o.vals {
		n.vals[k] = v
	}
	n.binds = append([]binding(nil), o.binds...)
	if !pos.IsValid() {
		n.pos = o.pos
	}
	return n
}

// get returns a field's value: set, else the default; ok is false for Empty.
func (o *Object) get(name string) (starlark.Value, bool) {
	if v, ok := o.vals[name]; ok {
		if v == Empty {
			return nil, false
		}
		return v, true
	}
	f := o.typ.index[name]
	if f == nil || f.def == nil {
		return nil, false
	}
	return f.def, true
}

func (o *Object) update(args starlark.Tuple, kwargs []starlark.Tuple) error {
	set := func(k string, v starlark.Value) error {
		f := o.typ.index[k]
		if f == nil {
			return fmt.Errorf("%s has no field %q%s", o.typ.name, k, hint(k, o.typ.fieldNames()))
		}
		nv, err := normalize(v, f.typ, o.typ.name+"."+k)
		if err != nil {
			return err
		}
		o.vals[k] = nv
		return nil
	}
	for _, a := range args {
		switch a := a.(type) {
		case *starlark.Dict:
			for _, it := range a.Items() {
				k, ok := starlark.AsString(it[0])
				if !ok {
					return fmt.Errorf("%s: field names must be strings, not %s", o.typ.name, it[0].Type())
				}
				if err := set(k, it[1]); err != nil {
					return err
				}
			}
		case *Object:
			for k, v := range a.vals {
				if err := set(k, v); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: positional arguments must be dicts, not %s", o.typ.name, a.Type())
		}
	}
	for _, kv := range kwargs {
		if err := set(string(kv[0].(starlark.String)), kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (o *Object) String() string {
	var parts []string
	for _, f := range o.typ.fields {
		if v, ok := o.vals[f.name]; ok && v != Empty {
			parts = append(parts, f.name+"="+v.String())
		}
	}
	return o.typ.name + "(" + strings.Join(parts, ", ") + ")"
}

// Type implements starlark.Value.
func (o *Object) Type() string { return o.typ.name }

// Freeze implements starlark.Value; objects are immutable.
func (o *Object) Freeze() {}

// Truth implements starlark.Value.
func (o *Object) Truth() starlark.Bool { return true }

// Hash implements starlark.Value.
func (o *Object) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", o.typ.name) }

// Name implements starlark.Callable.
func (o *Object) Name() string { return o.typ.name }

// CallInternal returns a copy with the given fields replaced.
func (o *Object) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	n := o.clone(callerPos(thread))
	if err := n.update(args, kwargs); err != nil {
		return nil, err
	}
	return n, nil
}

// AttrNames implements starlark.HasAttrs.
func (o *Object) AttrNames() []string {
	names := append([]string{"bind", "copy", "check"}, o.typ.fieldNames()...)
	for _, f := range o.typ.fields {
		names = append(names, "has_"+f.name)
	}
	sort.Strings(names)
	return names
}

// Attr implements starlark.HasAttrs. As in pystachio, a field is a method:
// obj.name() reads it and obj.name(v) returns a copy with it set.
func (o *Object) Attr(name string) (starlark.Value, error) {
	switch name {
	case "bind":
		return starlark.NewBuiltin("bind", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return o.bind(thread, args, kwargs)
		}), nil
	case "copy":
		return starlark.NewBuiltin("copy", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return o.clone(syntax.Position{}), nil
		}), nil
	case "check":
		return starlark.NewBuiltin("check", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			for _, f := range o.typ.fields {
				if _, ok := o.get(f.name); !ok && f.required {
					return starlark.False, nil
				}
			}
			return starlark.True, nil
		}), nil
	}
	if f, ok := strings.CutPrefix(name, "has_"); ok && o.typ.index[f] != nil {
		return starlark.NewBuiltin(name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			_, ok := o.get(f)
			return starlark.Bool(ok), nil
		}), nil
	}
	if o.typ.index[name] == nil {
		return nil, nil
	}
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(kwargs) > 0 || len(args) > 1 {
			return nil, fmt.Errorf("%s.%s: want no argument (read) or one (copy with the field set)", o.typ.name, name)
		}
		if len(args) == 1 {
			n := o.clone(callerPos(thread))
			if err := n.update(nil, []starlark.Tuple{{starlark.String(name), args[0]}}); err != nil {
				return nil, err
			}
			return n, nil
		}
		v, ok := o.get(name)
		if !ok {
			return Empty, nil
		}
		if l, ok := v.(*starlark.List); ok {
			return starlark.NewList(listElems(l)), nil
		}
		return v, nil
	}), nil
}

func (o *Object) bind(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var nb []binding
	add := func(k string, v starlark.Value) error {
		ref, err := parseRef(k)
		if err != nil {
			return fmt.Errorf("bind: %v", err)
		}
		nb = append(nb, binding{ref: ref, val: v})
		return nil
	}
	for _, a := range args {
		d, ok := a.(*starlark.Dict)
		if !ok {
			return nil, fmt.Errorf("bind: positional arguments must be dicts, not %s", a.Type())
		}
		for _, it := range d.Items() {
			k, ok := starlark.AsString(it[0])
			if !ok {
				return nil, fmt.Errorf("bind: keys must be strings, not %s", it[0].Type())
			}
			if err := add(k, it[1]); err != nil {
				return nil, err
			}
		}
	}
	for _, kv := range kwargs {
		if err := add(string(kv[0].(starlark.String)), kv[1]); err != nil {
			return nil, err
		}
	}
	n := o.clone(syntax.Position{})
	// Later bindings win: keep the newest first, and within one call the
	// later keys first.
	for i, j := 0, len(nb)-1; i < j; i, j = i+1, j-1 {
		nb[i], nb[j] = nb[j], nb[i]
	}
	n.binds = append(nb, o.binds...)
	return n, nil
}

func listElems(l *starlark.List) []starlark.Value {
	out := make([]starlark.Value, l.Len())
	for i := range out {
		out[i] = l.Index(i)
	}
	return out
}

// hasMustache reports whether s holds a {{...}} reference.
func hasMustache(s string) bool { return strings.Contains(s, "{{") && strings.Contains(s, "}}") }

// normalize checks v against t and converts it to the stored form: dicts
// become structs, lists are copied, numbers and numeric strings are
// coerced. Strings holding mustaches are kept for later interpolation.
func normalize(v starlark.Value, t *Type, path string) (starlark.Value, error) {
	if isEmpty(v) {
		return Empty, nil
	}
	bad := func() (starlark.Value, error) {
		s := v.String()
		if len(s) > 60 {
			s = s[:60] + "..."
		}
		return nil, fmt.Errorf("%s: expected %s, got %s %s", path, t, v.Type(), s)
	}
	mustache := func() bool {
		s, ok := v.(starlark.String)
		return ok && hasMustache(string(s))
	}
	switch t.kind {
	case kString:
		switch v := v.(type) {
		case starlark.String:
			return v, nil
		case starlark.Int, starlark.Float:
			return starlark.String(v.String()), nil
		case starlark.Bool:
			if v {
				return starlark.String("True"), nil
			}
			return starlark.String("False"), nil
		}
		return bad()
	case kInteger:
		switch x := v.(type) {
		case starlark.Int:
			return x, nil
		case starlark.Float:
			if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
				return bad()
			}
			return starlark.MakeInt64(int64(x)), nil
		case starlark.String:
			if mustache() {
				return v, nil
			}
			if i, err := parseInt(string(x)); err == nil {
				return starlark.MakeInt64(i), nil
			}
		}
		return bad()
	case kFloat:
		switch x := v.(type) {
		case starlark.Int:
			f, _ := starlark.AsFloat(x)
			return starlark.Float(f), nil
		case starlark.Float:
			return x, nil
		case starlark.String:
			if mustache() {
				return v, nil
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(string(x)), 64); err == nil {
				return starlark.Float(f), nil
			}
		}
		return bad()
	case kBoolean:
		switch x := v.(type) {
		case starlark.Bool:
			return x, nil
		case starlark.Int:
			if i, ok := x.Int64(); ok && (i == 0 || i == 1) {
				return starlark.Bool(i == 1), nil
			}
		case starlark.String:
			if mustache() {
				return v, nil
			}
			if b, err := parseBool(string(x)); err == nil {
				return starlark.Bool(b), nil
			}
		}
		return bad()
	case kEnum:
		if s, ok := v.(starlark.String); ok {
			if mustache() {
				return v, nil
			}
			for _, e := range t.enum {
				if string(s) == e {
					return s, nil
				}
			}
			return nil, fmt.Errorf("%s: %q is not one of %s %v", path, string(s), t.name, t.enum)
		}
		return bad()
	case kList:
		it, ok := v.(starlark.Iterable)
		if !ok {
			return bad()
		}
		if _, isStr := v.(starlark.String); isStr {
			return bad()
		}
		if _, isDict := v.(*starlark.Dict); isDict {
			return bad()
		}
		var out []starlark.Value
		iter := it.Iterate()
		defer iter.Done()
		var x starlark.Value
		for i := 0; iter.Next(&x); i++ {
			nx, err := normalize(x, t.elem, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, nx)
		}
		return starlark.NewList(out), nil
	case kMap:
		d, ok := v.(*starlark.Dict)
		if !ok {
			return bad()
		}
		out := starlark.NewDict(d.Len())
		for _, it := range d.Items() {
			k, err := normalize(it[0], t.key, path+" key")
			if err != nil {
				return nil, err
			}
			val, err := normalize(it[1], t.elem, fmt.Sprintf("%s[%s]", path, it[0]))
			if err != nil {
				return nil, err
			}
			if err := out.SetKey(k, val); err != nil {
				return nil, err
			}
		}
		return out, nil
	case kStruct:
		switch x := v.(type) {
		case *Object:
			if x.typ.derives(t) || (t == tStruct) {
				return x, nil
			}
			return nil, fmt.Errorf("%s: expected %s, got %s", path, t, x.typ.name)
		case *starlark.Dict:
			o := &Object{typ: t, vals: map[string]starlark.Value{}}
			if err := o.update(starlark.Tuple{x}, nil); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			return o, nil
		}
		return bad()
	case kChoice:
		if o, ok := v.(*Object); ok {
			for _, c := range t.choices {
				if o.typ.derives(c) {
					return o, nil
				}
			}
			return bad()
		}
		for _, c := range t.choices {
			if nv, err := normalize(v, c, path); err == nil {
				return nv, nil
			}
		}
		return bad()
	}
	return bad()
}

func parseInt(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	return int64(f), nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// callerPos is the position of the Starlark code calling the current builtin.
func callerPos(thread *starlark.Thread) syntax.Position {
	if thread == nil {
		return syntax.Position{}
	}
	for d := 1; d < thread.CallStackDepth(); d++ {
		if p := thread.CallFrame(d).Pos; p.IsValid() && p.Filename() != "<builtin>" {
			return p
		}
	}
	return syntax.Position{}
}

// hint returns " (did you mean X?)" for the candidate nearest to x.
func hint(x string, candidates []string) string {
	best, bestD := "", len(x)/2+2
	for _, c := range candidates {
		if d := levenshtein(strings.ToLower(x), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
