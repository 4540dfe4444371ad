package config

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/limits"
	starjson "go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Options control evaluation.
type Options struct {
	// Bindings are --bind overrides, "a.b" -> "value"; they win over
	// every binding in the file.
	Bindings map[string]string
	// Env is os.getenv and os.environ; nil reads the real environment.
	Env func(string) (string, bool)
	// User is getpass.getuser(); empty means the invoking user.
	User string
}

// maxSteps bounds the Starlark execution of one file (and its includes).
const maxSteps = 50_000_000

var fileOptions = &syntax.FileOptions{
	Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true,
}

// LoadFile evaluates the .aurora file at path and materializes every job
// in its `jobs` list. Evaluation errors are returned as file:line:col:
// message; a job whose materialization fails (an unbound mustache, a
// missing required field) is kept in File.Jobs with its key as far as it
// could be resolved, and Select reports its error.
func LoadFile(path string, opts Options) (*File, error) {
	src, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return load(path, src, opts)
}

// readConfigFile reads a .aurora file (or an include) of at most
// limits.ConfigFileBytes.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, limits.ConfigFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(src) > limits.ConfigFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, more than a config may be", path, limits.ConfigFileBytes)
	}
	return src, nil
}

func load(path string, src []byte, opts Options) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: internal error evaluating the config: %v", path, r)
		}
	}()
	l := &loader{opts: opts, active: map[string]bool{}, memory: startMemoryWatch()}
	defer l.memory.close()
	globals, err := l.exec(path, src)
	if err != nil {
		return nil, err
	}
	jv, ok := globals["jobs"]
	if !ok {
		return &File{Path: path}, nil
	}
	it, ok := jv.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%s: jobs must be a list of Job objects, not %s", path, jv.Type())
	}
	file := &File{Path: path}
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; iter.Next(&x); i++ {
		o, ok := x.(*Object)
		if !ok || !o.typ.derives(tJob) {
			return nil, fmt.Errorf("%s: jobs[%d] is a %s, not a Job", path, i, x.Type())
		}
		file.Jobs = append(file.Jobs, newJob(o, opts.Bindings))
	}
	return file, nil
}

type loader struct {
	opts   Options
	active map[string]bool // include cycle detection
	steps  uint64
	memory *memoryWatch // bounds the heap of the whole evaluation, includes too
}

// run parses, bounds (see boundOperators), resolves, compiles and executes
// one file.
func (l *loader) run(thread *starlark.Thread, path, code string, pre starlark.StringDict) (starlark.StringDict, error) {
	f, err := fileOptions.Parse(path, code, 0)
	if err != nil {
		return nil, err
	}
	boundOperators(f)
	prog, err := starlark.FileProgram(f, pre.Has)
	if err != nil {
		return nil, err
	}
	g, err := prog.Init(thread, pre)
	g.Freeze()
	return g, err
}

// exec evaluates one file (after its includes) and returns its globals
// merged over the included ones.
func (l *loader) exec(path string, src []byte) (starlark.StringDict, error) {
	abs, _ := filepath.Abs(path)
	if l.active[abs] {
		return nil, fmt.Errorf("%s: include cycle", path)
	}
	l.active[abs] = true
	defer delete(l.active, abs)

	code, incs, err := rewrite(path, string(src))
	if err != nil {
		return nil, err
	}
	pre := predeclared()
	boundBuiltins(pre)
	pre["__import__"] = starlark.NewBuiltin("__import__", l.importModule)
	pre["include"] = starlark.NewBuiltin("include", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		return nil, errors.New("include() is only supported as a top-level statement with a literal path")
	})
	pre["open"] = openBuiltin(filepath.Dir(path))
	included := starlark.StringDict{}
	for _, inc := range incs {
		p := inc.path
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		isrc, err := readConfigFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: include(%q): %v", path, inc.line, inc.path, err)
		}
		g, err := l.exec(p, isrc)
		if err != nil {
			return nil, err
		}
		for k, v := range g {
			included[k] = v
			pre[k] = v
		}
	}
	thread := &starlark.Thread{
		Name:  path,
		Print: func(*starlark.Thread, string) {},
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load() is not supported; use include()")
		},
	}
	thread.SetMaxExecutionSteps(maxSteps - min(l.steps, maxSteps-1))
	l.memory.attach(thread)
	globals, err := l.run(thread, path, code, pre)
	l.steps += thread.ExecutionSteps()
	if err != nil {
		return nil, formatError(err)
	}
	for k, v := range globals {
		included[k] = v
	}
	return included, nil
}

// formatError renders Starlark errors as file:line:col: message.
func formatError(err error) error {
	var se syntax.Error
	if errors.As(err, &se) {
		return fmt.Errorf("%s: syntax error: %s%s", se.Pos, se.Msg, syntaxHint(se.Msg))
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		var msgs []string
		for _, e := range rl {
			msg := e.Msg
			if name, ok := strings.CutPrefix(msg, "undefined: "); ok && !strings.Contains(name, " ") {
				var names []string
				for k := range predeclared() {
					if !strings.HasPrefix(k, "_") {
						names = append(names, k)
					}
				}
				sort.Strings(names)
				msg += strings.ReplaceAll(hint(name, names), `"`, "")
			}
			msgs = append(msgs, fmt.Sprintf("%s: %s", e.Pos, msg))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		for i := len(ee.CallStack) - 1; i >= 0; i-- {
			p := ee.CallStack[i].Pos
			if p.IsValid() && p.Filename() != "<builtin>" {
				return fmt.Errorf("%s: %s", p, ee.Msg)
			}
		}
		return errors.New(ee.Msg)
	}
	return err
}

func syntaxHint(msg string) string {
	switch {
	case strings.Contains(msg, "got is"):
		return " (the Python 'is' operator is not supported; use ==)"
	case strings.Contains(msg, "got lambda"):
		return ""
	case strings.Contains(msg, "**"):
		return " (the ** operator is not supported; write 1024 * 1024 or use MB/GB)"
	}
	return ""
}

// importModule implements the allow-listed Python modules.
func (l *loader) importModule(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs("import", args, kwargs, 1, &name); err != nil {
		return nil, err
	}
	switch name {
	case "getpass":
		return &starlarkstruct.Module{Name: name, Members: starlark.StringDict{
			"getuser": starlark.NewBuiltin("getuser", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
				return starlark.String(l.user()), nil
			}),
		}}, nil
	case "os":
		return &starlarkstruct.Module{Name: name, Members: starlark.StringDict{
			"getenv": starlark.NewBuiltin("getenv", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
				var k string
				var d starlark.Value = starlark.None
				if err := starlark.UnpackArgs("getenv", args, kwargs, "key", &k, "default?", &d); err != nil {
					return nil, err
				}
				if v, ok := l.getenv(k); ok {
					return starlark.String(v), nil
				}
				return d, nil
			}),
			"environ": &environ{l: l},
			"path":    pathModule,
			"sep":     starlark.String("/"),
		}}, nil
	case "os.path":
		return pathModule, nil
	case "hashlib":
		m := starlark.StringDict{}
		for n, f := range map[string]func() hash.Hash{"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New} {
			m[n] = starlark.NewBuiltin(n, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
				var s string
				if err := starlark.UnpackPositionalArgs(n, args, kwargs, 0, &s); err != nil {
					return nil, err
				}
				h := &hashObj{name: n, h: f()}
				h.h.Write([]byte(s))
				return h, nil
			})
		}
		return &starlarkstruct.Module{Name: name, Members: m}, nil
	case "json":
		j := starjson.Module
		return &starlarkstruct.Module{Name: name, Members: starlark.StringDict{
			"dumps": j.Members["encode"], "loads": j.Members["decode"],
			"encode": j.Members["encode"], "decode": j.Members["decode"],
		}}, nil
	case "math":
		return math.Module, nil
	}
	return nil, fmt.Errorf("import %s: module not supported (allowed: getpass, hashlib, json, math, os, os.path)", name)
}

var pathModule = &starlarkstruct.Module{Name: "os.path", Members: starlark.StringDict{
	"join": starlark.NewBuiltin("join", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		out := ""
		for _, a := range args {
			s, ok := starlark.AsString(a)
			if !ok {
				return nil, fmt.Errorf("os.path.join: want strings")
			}
			if strings.HasPrefix(s, "/") || out == "" {
				out = s
			} else if strings.HasSuffix(out, "/") {
				out += s
			} else {
				out += "/" + s
			}
		}
		return starlark.String(out), nil
	}),
	"basename": strFunc("basename", func(s string) string { return s[strings.LastIndex(s, "/")+1:] }),
	"dirname": strFunc("dirname", func(s string) string {
		i := strings.LastIndex(s, "/")
		if i < 0 {
			return ""
		}
		if d := strings.TrimRight(s[:i+1], "/"); d != "" {
			return d
		}
		return "/"
	}),
}}

func strFunc(name string, f func(string) string) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var s string
		if err := starlark.UnpackPositionalArgs(name, args, kwargs, 1, &s); err != nil {
			return nil, err
		}
		return starlark.String(f(s)), nil
	})
}

func (l *loader) user() string {
	if l.opts.User != "" {
		return l.opts.User
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func (l *loader) getenv(k string) (string, bool) {
	if l.opts.Env != nil {
		return l.opts.Env(k)
	}
	return os.LookupEnv(k)
}

// environ is os.environ: environ['X'], environ.get('X', default), 'X' in environ.
type environ struct{ l *loader }

func (e *environ) String() string        { return "environ" }
func (e *environ) Type() string          { return "environ" }
func (e *environ) Freeze()               {}
func (e *environ) Truth() starlark.Bool  { return true }
func (e *environ) Hash() (uint32, error) { return 0, errors.New("unhashable: environ") }
func (e *environ) Get(k starlark.Value) (starlark.Value, bool, error) {
	s, ok := starlark.AsString(k)
	if !ok {
		return nil, false, fmt.Errorf("os.environ: keys are strings")
	}
	v, ok := e.l.getenv(s)
	if !ok {
		return nil, false, fmt.Errorf("os.environ: %q is not set", s)
	}
	return starlark.String(v), true, nil
}
func (e *environ) Has(k starlark.Value) (starlark.Bool, error) {
	s, ok := starlark.AsString(k)
	if !ok {
		return false, nil
	}
	_, ok = e.l.getenv(s)
	return starlark.Bool(ok), nil
}
func (e *environ) AttrNames() []string { return []string{"get"} }
func (e *environ) Attr(name string) (starlark.Value, error) {
	if name != "get" {
		return nil, nil
	}
	return starlark.NewBuiltin("get", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var k string
		var d starlark.Value = starlark.None
		if err := starlark.UnpackArgs("get", args, kwargs, "key", &k, "default?", &d); err != nil {
			return nil, err
		}
		if v, ok := e.l.getenv(k); ok {
			return starlark.String(v), nil
		}
		return d, nil
	}), nil
}

// hashObj is a hashlib digest object.
type hashObj struct {
	name string
	h    hash.Hash
}

func (h *hashObj) String() string        { return "<" + h.name + " HASH object>" }
func (h *hashObj) Type() string          { return "hash" }
func (h *hashObj) Freeze()               {}
func (h *hashObj) Truth() starlark.Bool  { return true }
func (h *hashObj) Hash() (uint32, error) { return 0, errors.New("unhashable: hash") }
func (h *hashObj) AttrNames() []string   { return []string{"hexdigest", "update"} }
func (h *hashObj) Attr(name string) (starlark.Value, error) {
	switch name {
	case "hexdigest":
		return starlark.NewBuiltin(name, func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.String(hex.EncodeToString(h.h.Sum(nil))), nil
		}), nil
	case "update":
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var s string
			if err := starlark.UnpackPositionalArgs(name, args, kwargs, 1, &s); err != nil {
				return nil, err
			}
			h.h.Write([]byte(s))
			return starlark.None, nil
		}), nil
	}
	return nil, nil
}

// File is an evaluated .aurora file.
type File struct {
	Path string
	Jobs []*Job // in the order of the file's jobs list
}

// Select returns the one job matching the key (job discovery, §4.1 of the
// reference). Empty arguments match anything; an empty name is allowed
// when only one job matches the rest. The error lists the available jobs.
func (f *File) Select(cluster, role, env, name string) (*Job, error) {
	want := strings.Join([]string{orStar(cluster), orStar(role), orStar(env), orStar(name)}, "/")
	if len(f.Jobs) == 0 {
		return nil, fmt.Errorf("%s: no jobs defined (the file must set jobs = [...])", f.Path)
	}
	var matches []*Job
	for _, j := range f.Jobs {
		if (cluster == "" || j.Cluster == cluster) && (role == "" || j.Role == role) &&
			(env == "" || j.Environment == env) && (name == "" || j.Name == name) {
			matches = append(matches, j)
		}
	}
	var avail []string
	for _, j := range f.Jobs {
		avail = append(avail, j.Key())
	}
	sort.Strings(avail)
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("%s: no job matches %s; available jobs: %s", f.Path, want, strings.Join(avail, ", "))
	case 1:
		if matches[0].err != nil {
			return nil, fmt.Errorf("job %s: %w", matches[0].Key(), matches[0].err)
		}
		return matches[0], nil
	}
	var ms []string
	for _, j := range matches {
		ms = append(ms, j.Key())
	}
	return nil, fmt.Errorf("%s: %d jobs match %s: %s; name the job", f.Path, len(matches), want, strings.Join(ms, ", "))
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// maxOpenBytes caps what open() reads: configs hash small files
// (checksums of artifacts they ship), not data sets.
const maxOpenBytes = 16 << 20

// openBuiltin is a read-only open(path[, mode]): a relative path is taken
// from the directory of the config that calls it, so that a config reads
// the same file wherever the client runs. The result has read(),
// readlines() and close(), which is what configs use it for
// (hashlib.md5(open('pkg.tar').read()).hexdigest()).
func openBuiltin(dir string) *starlark.Builtin {
	return starlark.NewBuiltin("open", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name string
		mode := "r"
		if err := starlark.UnpackArgs("open", args, kwargs, "name", &name, "mode?", &mode); err != nil {
			return nil, err
		}
		if mode != "r" && mode != "rb" {
			return nil, fmt.Errorf("open(%q, %q): configs may only read files (mode 'r' or 'rb')", name, mode)
		}
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open(%q): %v", name, err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxOpenBytes+1))
		if err != nil {
			return nil, fmt.Errorf("open(%q): %v", name, err)
		}
		if len(data) > maxOpenBytes {
			return nil, fmt.Errorf("open(%q): larger than %d bytes", name, maxOpenBytes)
		}
		return &fileObj{name: name, data: string(data)}, nil
	})
}

// fileObj is an opened file's contents.
type fileObj struct {
	name string
	data string
}

func (f *fileObj) String() string        { return fmt.Sprintf("<open file %q>", f.name) }
func (f *fileObj) Type() string          { return "file" }
func (f *fileObj) Freeze()               {}
func (f *fileObj) Truth() starlark.Bool  { return true }
func (f *fileObj) Hash() (uint32, error) { return 0, errors.New("unhashable: file") }
func (f *fileObj) AttrNames() []string   { return []string{"close", "read", "readlines"} }
func (f *fileObj) Attr(name string) (starlark.Value, error) {
	switch name {
	case "read":
		return starlark.NewBuiltin("read", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.String(f.data), nil
		}), nil
	case "readlines":
		return starlark.NewBuiltin("readlines", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			var lines []starlark.Value
			for rest := f.data; rest != ""; {
				i := strings.IndexByte(rest, '\n')
				if i < 0 {
					i = len(rest) - 1
				}
				lines = append(lines, starlark.String(rest[:i+1]))
				rest = rest[i+1:]
			}
			return starlark.NewList(lines), nil
		}), nil
	case "close":
		return starlark.NewBuiltin("close", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, nil
		}), nil
	}
	return nil, nil
}
