package config

import (
	"fmt"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/limits"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Evaluation is bounded in time (maxSteps) and in memory, so that a config
// that loops, or doubles a string forty times, fails with an error naming
// its line instead of taking the machine's memory. Starlark has no
// allocation hooks, so the bound has two parts:
//
//   - Every value the config builds with +, * and % (and +=, *=, %= on a
//     name) is checked: the parser's tree is rewritten so that these
//     operators call __binop__/__inplace__, which refuse a string or bytes
//     value over maxValueBytes and a list or tuple over maxValueElems, before
//     making it when its size is known in advance (repetition, list +=)
//     and otherwise right after (at most twice the limit is ever
//     allocated). Nothing that large can reach the scheduler anyway:
//     maxValueBytes is the API's request limit. range() is bounded the
//     same way, since list(range(n)) makes n elements in one call.
//   - Everything else (appends in a loop, comprehensions, methods such as
//     extend or replace) is caught by a watchdog on the heap: every
//     millisecond the heap is compared with what it was when evaluation
//     started, and evaluation stops, with the position it reached, once it
//     grew by more than maxEvalMemory. The heap is the process's, but the
//     client does nothing else while it evaluates a config. A poll costs
//     about 2 µs, far less than checking at every Starlark step would.
const (
	maxValueBytes = limits.APIRequestBytes
	maxValueElems = limits.APIRequestBytes / 16 // a list element is two words
	maxEvalMemory = 512 << 20
)

// binopNames are the operators that can make a large value, by the name
// __binop__ gets.
var binopNames = map[syntax.Token]string{syntax.PLUS: "+", syntax.STAR: "*", syntax.PERCENT: "%"}

var binopTokens = map[string]syntax.Token{"+": syntax.PLUS, "*": syntax.STAR, "%": syntax.PERCENT}

// augmented maps an augmented assignment to its operator.
var augmented = map[syntax.Token]syntax.Token{syntax.PLUS_EQ: syntax.PLUS, syntax.STAR_EQ: syntax.STAR, syntax.PERCENT_EQ: syntax.PERCENT}

// boundOperators rewrites f so that +, * and % go through __binop__, and
// NAME op= X through __inplace__, before f is resolved.
func boundOperators(f *syntax.File) {
	var rw rewriter
	rw.stmts(f.Stmts)
}

type rewriter struct{}

func (rw rewriter) stmts(ss []syntax.Stmt) {
	for _, s := range ss {
		rw.stmt(s)
	}
}

func (rw rewriter) stmt(s syntax.Stmt) {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		s.LHS = rw.expr(s.LHS)
		s.RHS = rw.expr(s.RHS)
		if op, ok := augmented[s.Op]; ok {
			if id, ok := s.LHS.(*syntax.Ident); ok {
				// x op= y  ->  x = __inplace__("op", x, y): one evaluation
				// of the target, and a list's += still extends it in place.
				s.RHS = call("__inplace__", s.OpPos, binopNames[op], &syntax.Ident{NamePos: id.NamePos, Name: id.Name}, s.RHS)
				s.Op = syntax.EQ
			}
		}
	case *syntax.DefStmt:
		rw.params(s.Params)
		rw.stmts(s.Body)
	case *syntax.ExprStmt:
		s.X = rw.expr(s.X)
	case *syntax.IfStmt:
		s.Cond = rw.expr(s.Cond)
		rw.stmts(s.True)
		rw.stmts(s.False)
	case *syntax.ForStmt:
		s.X = rw.expr(s.X)
		rw.stmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = rw.expr(s.Cond)
		rw.stmts(s.Body)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = rw.expr(s.Result)
		}
	}
}

// params rewrites default values (name=default), not the names.
func (rw rewriter) params(ps []syntax.Expr) {
	for _, p := range ps {
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = rw.expr(b.Y)
		}
	}
}

// args rewrites call arguments, keeping name=value pairs.
func (rw rewriter) args(as []syntax.Expr) {
	for i, a := range as {
		if b, ok := a.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = rw.expr(b.Y)
			continue
		}
		as[i] = rw.expr(a)
	}
}

func (rw rewriter) exprs(es []syntax.Expr) {
	for i, e := range es {
		es[i] = rw.expr(e)
	}
}

func (rw rewriter) expr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		e.X, e.Y = rw.expr(e.X), rw.expr(e.Y)
		if name, ok := binopNames[e.Op]; ok {
			return call("__binop__", e.OpPos, name, e.X, e.Y)
		}
	case *syntax.CallExpr:
		e.Fn = rw.expr(e.Fn)
		rw.args(e.Args)
	case *syntax.Comprehension:
		e.Body = rw.expr(e.Body)
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.X = rw.expr(c.X)
			case *syntax.IfClause:
				c.Cond = rw.expr(c.Cond)
			}
		}
	case *syntax.CondExpr:
		e.Cond, e.True, e.False = rw.expr(e.Cond), rw.expr(e.True), rw.expr(e.False)
	case *syntax.DictExpr:
		for _, d := range e.List {
			if d, ok := d.(*syntax.DictEntry); ok {
				d.Key, d.Value = rw.expr(d.Key), rw.expr(d.Value)
			}
		}
	case *syntax.DotExpr:
		e.X = rw.expr(e.X)
	case *syntax.IndexExpr:
		e.X, e.Y = rw.expr(e.X), rw.expr(e.Y)
	case *syntax.LambdaExpr:
		rw.params(e.Params)
		e.Body = rw.expr(e.Body)
	case *syntax.ListExpr:
		rw.exprs(e.List)
	case *syntax.TupleExpr:
		rw.exprs(e.List)
	case *syntax.ParenExpr:
		e.X = rw.expr(e.X)
	case *syntax.SliceExpr:
		e.X = rw.expr(e.X)
		if e.Lo != nil {
			e.Lo = rw.expr(e.Lo)
		}
		if e.Hi != nil {
			e.Hi = rw.expr(e.Hi)
		}
		if e.Step != nil {
			e.Step = rw.expr(e.Step)
		}
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = rw.expr(e.X)
		}
	}
	return e
}

// call is fn("op", x, y) at pos.
func call(fn string, pos syntax.Position, op string, x, y syntax.Expr) *syntax.CallExpr {
	lit := &syntax.Literal{Token: syntax.STRING, TokenPos: pos, Raw: fmt.Sprintf("%q", op), Value: op}
	_, end := y.Span()
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: fn}, Lparen: pos, Args: []syntax.Expr{lit, x, y}, Rparen: end}
}

// boundBuiltins are the predeclared names the rewritten operators call,
// and range, bounded.
func boundBuiltins(pre starlark.StringDict) {
	pre["__binop__"] = starlark.NewBuiltin("__binop__", builtinBinop)
	pre["__inplace__"] = starlark.NewBuiltin("__inplace__", builtinInplace)
	if r, ok := starlark.Universe["range"].(*starlark.Builtin); ok {
		pre["range"] = starlark.NewBuiltin("range", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			v, err := starlark.Call(thread, r, args, kwargs)
			if err != nil {
				return nil, err
			}
			if n := starlark.Len(v); n > maxValueElems {
				return nil, fmt.Errorf("range of %d elements: a config value may have at most %d", n, maxValueElems)
			}
			return v, nil
		})
	}
}

func unpackBinop(name string, args starlark.Tuple, kwargs []starlark.Tuple) (syntax.Token, starlark.Value, starlark.Value, error) {
	if len(args) != 3 || len(kwargs) != 0 {
		return 0, nil, nil, fmt.Errorf("%s: internal call with %d arguments", name, len(args))
	}
	op, _ := starlark.AsString(args[0])
	tok, ok := binopTokens[op]
	if !ok {
		return 0, nil, nil, fmt.Errorf("%s: unknown operator %q", name, op)
	}
	return tok, args[1], args[2], nil
}

func builtinBinop(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	op, x, y, err := unpackBinop(b.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	return boundedBinary(op, x, y)
}

// builtinInplace is x op= y: a list's += extends it in place, as
// Starlark's does; everything else is x op y.
func builtinInplace(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	op, x, y, err := unpackBinop(b.Name(), args, kwargs)
	if err != nil {
		return nil, err
	}
	l, isList := x.(*starlark.List)
	it, isIterable := y.(starlark.Iterable)
	if op != syntax.PLUS || !isList || !isIterable {
		return boundedBinary(op, x, y)
	}
	if n := starlark.Len(y); n >= 0 {
		if err := checkElems("+=", l.Len()+n); err != nil {
			return nil, err
		}
	}
	items, err := collect(it, l.Len()) // all first: y may be l itself
	if err != nil {
		return nil, err
	}
	for _, v := range items {
		if err := l.Append(v); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// collect reads it, refusing more elements than a list of have elements
// may grow by.
func collect(it starlark.Iterable, have int) ([]starlark.Value, error) {
	var items []starlark.Value
	iter := it.Iterate()
	defer iter.Done()
	var v starlark.Value
	for iter.Next(&v) {
		items = append(items, v)
		if err := checkElems("+=", have+len(items)); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// boundedBinary is x op y, refused when the result would be too large.
func boundedBinary(op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	if op == syntax.STAR {
		if err := checkRepeat(x, y); err != nil {
			return nil, err
		}
		if err := checkRepeat(y, x); err != nil {
			return nil, err
		}
	}
	z, err := starlark.Binary(op, x, y)
	if err != nil {
		return nil, err
	}
	return z, checkSize(binopNames[op], z)
}

// checkRepeat refuses seq * n before making it, when the result would be
// too large.
func checkRepeat(seq, n starlark.Value) error {
	i, ok := n.(starlark.Int)
	if !ok {
		return nil
	}
	count, ok := i.Int64()
	if !ok {
		count = 1 << 62
	}
	if count <= 1 {
		return nil
	}
	switch s := seq.(type) {
	case starlark.String, starlark.Bytes:
		if l := int64(starlark.Len(s)); l > 0 && count > maxValueBytes/l {
			return fmt.Errorf("%s * %d would be %s bytes long: a config value may have at most %d bytes", s.Type(), count, approxProduct(l, count), maxValueBytes)
		}
	case *starlark.List, starlark.Tuple:
		if l := int64(starlark.Len(s)); l > 0 && count > maxValueElems/l {
			return fmt.Errorf("%s * %d would have %s elements: a config value may have at most %d", s.Type(), count, approxProduct(l, count), maxValueElems)
		}
	}
	return nil
}

// approxProduct renders l*count without overflowing.
func approxProduct(l, count int64) string {
	if count > (1<<62)/l {
		return "more than 2^62"
	}
	return fmt.Sprint(l * count)
}

// checkSize refuses a value made by op that is larger than a config value
// may be.
func checkSize(op string, v starlark.Value) error {
	switch v := v.(type) {
	case starlark.String, starlark.Bytes:
		if n := starlark.Len(v); n > maxValueBytes {
			return fmt.Errorf("%s gives a %s of %d bytes: a config value may have at most %d bytes", op, v.Type(), n, maxValueBytes)
		}
	case *starlark.List, starlark.Tuple:
		return checkElems(op, starlark.Len(v))
	}
	return nil
}

func checkElems(op string, n int) error {
	if n > maxValueElems {
		return fmt.Errorf("%s gives a list of %d elements: a config value may have at most %d", op, n, maxValueElems)
	}
	return nil
}

// evalMemoryLimit is how much the heap may grow while a config is
// evaluated (a variable for tests).
var evalMemoryLimit uint64 = maxEvalMemory

// memoryWatch cancels the evaluation once the heap grew by more than
// evalMemoryLimit since it started, polling every memoryPoll: a Starlark
// thread stops at its next step, so what it holds is bounded by the limit
// plus what one operation makes (itself bounded by the operator checks,
// or by the size of what it copies).
type memoryWatch struct {
	base    uint64
	sample  []metrics.Sample
	mu      sync.Mutex
	thread  *starlark.Thread // the file being evaluated
	tripped bool
	stop    chan struct{}
	done    chan struct{}
}

const (
	heapMetric = "/memory/classes/heap/objects:bytes"
	memoryPoll = time.Millisecond
)

// startMemoryWatch starts watching; call close when evaluation ends.
func startMemoryWatch() *memoryWatch {
	w := &memoryWatch{sample: []metrics.Sample{{Name: heapMetric}}, stop: make(chan struct{}), done: make(chan struct{})}
	w.base = w.heap()
	go w.run()
	return w
}

func (w *memoryWatch) heap() uint64 {
	metrics.Read(w.sample)
	if w.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return w.sample[0].Value.Uint64()
}

func (w *memoryWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(memoryPoll)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		if h := w.heap(); h > w.base && h-w.base > evalMemoryLimit {
			w.mu.Lock()
			w.tripped = true
			if w.thread != nil {
				w.thread.Cancel(w.reason())
			}
			w.mu.Unlock()
			return
		}
	}
}

func (w *memoryWatch) reason() string {
	return fmt.Sprintf("the config uses more than %d MiB of memory", evalMemoryLimit>>20)
}

// attach makes thread the one to stop.
func (w *memoryWatch) attach(thread *starlark.Thread) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.thread = thread
	if w.tripped {
		thread.Cancel(w.reason())
	}
}

// close stops the watch.
func (w *memoryWatch) close() {
	close(w.stop)
	<-w.done
}
