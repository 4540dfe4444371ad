package config

import (
	"fmt"
	"regexp"
	"strings"
)

// The Python compatibility layer: a line-based rewrite of the few Python
// statements Starlark lacks, keeping every line where it was so that
// Starlark's positions are the file's.
//
//	import getpass, os           ->  getpass = __import__("getpass"); os = __import__("os")
//	from os import getenv as g   ->  g = __import__("os").getenv
//	class P(Struct):             ->  P = __class__("P", Struct,
//	    x = Default(String, 'a') ->      x = Default(String, 'a'),
//	    y = Required(Integer)    ->      y = Required(Integer),)
//	include('base.aurora')       ->  pass   (evaluated beforehand; see load.go)
//
// Class bodies may hold field declarations, docstrings, comments and
// pass; anything else (methods, statements) is reported. Statements Starlark
// has no equivalent for (try, with, raise, global, del, assert, yield,
// decorators, the Python 2 print statement, exec) are reported by name.

// lexState is the lexical state carried from line to line.
type lexState struct {
	quote  byte // 0 outside strings
	triple bool
	depth  int // open brackets
}

func (s lexState) clean() bool { return s.quote == 0 && s.depth == 0 }

// scanLine advances st over line and returns the byte offset of a comment
// outside strings (or -1) and whether the line ends with a backslash
// continuation.
func scanLine(line string, st *lexState) (comment int, cont bool) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if st.quote != 0 {
			switch {
			case c == '\\':
				i++
			case c == st.quote && st.triple && strings.HasPrefix(line[i:], strings.Repeat(string(c), 3)):
				st.quote, st.triple = 0, false
				i += 2
			case c == st.quote && !st.triple:
				st.quote = 0
			}
			continue
		}
		switch c {
		case '#':
			return i, false
		case '\'', '"':
			if strings.HasPrefix(line[i:], strings.Repeat(string(c), 3)) {
				st.quote, st.triple = c, true
				i += 2
			} else {
				st.quote = c
			}
		case '(', '[', '{':
			st.depth++
		case ')', ']', '}':
			if st.depth > 0 {
				st.depth--
			}
		}
	}
	if st.quote != 0 && !st.triple {
		st.quote = 0 // unterminated: let the parser report it
	}
	return -1, strings.HasSuffix(line, "\\") && st.quote == 0
}

// statement is a logical line: its first and last physical lines.
type statement struct {
	first, last int
	indent      int
	text        string // first line without indentation
}

func statements(lines []string) []statement {
	var out []statement
	var st lexState
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " \t")
		if !st.clean() || trimmed == "" || strings.HasPrefix(trimmed, "#") {
			if !st.clean() {
				scanLine(lines[i], &st)
			}
			continue
		}
		s := statement{first: i, indent: len(lines[i]) - len(trimmed), text: trimmed}
		for {
			_, cont := scanLine(lines[i], &st)
			if (st.clean() && !cont) || i+1 >= len(lines) {
				break
			}
			i++
		}
		s.last = i
		out = append(out, s)
	}
	return out
}

var (
	importRe  = regexp.MustCompile(`^import\s+(.+?)\s*(#.*)?$`)
	fromRe    = regexp.MustCompile(`^from\s+([\w.]+)\s+import\s+(.+?)\s*(#.*)?$`)
	classRe   = regexp.MustCompile(`^class\s+(\w+)\s*(?:\(\s*([\w.]*)\s*\))?\s*:\s*(.*?)\s*$`)
	includeRe = regexp.MustCompile(`^include\(\s*(?:'([^']*)'|"([^"]*)")\s*\)\s*(#.*)?$`)
	asRe      = regexp.MustCompile(`^([\w.]+)(?:\s+as\s+(\w+))?$`)
	keywordRe = regexp.MustCompile(`^(try|except|finally|with|raise|global|nonlocal|del|assert|yield|exec|async|await)\b`)
	printRe   = regexp.MustCompile(`^print\s+[^(\s=]`)
	fieldRe   = regexp.MustCompile(`^\w+\s*=[^=]`)
)

// compatError is an error at a line of the original file.
type compatError struct {
	file string
	line int
	msg  string
}

func (e *compatError) Error() string { return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg) }

// rewrite applies the compatibility layer. It returns the Starlark source
// and the include() paths with the lines they were on, in order.
func rewrite(file, src string) (string, []include, error) {
	lines := strings.Split(src, "\n")
	var incs []include
	errAt := func(line int, format string, args ...any) error {
		return &compatError{file: file, line: line + 1, msg: fmt.Sprintf(format, args...)}
	}
	stmts := statements(lines)
	for si := 0; si < len(stmts); si++ {
		s := stmts[si]
		ind := strings.Repeat(" ", s.indent)
		if m := keywordRe.FindStringSubmatch(s.text); m != nil {
			return "", nil, errAt(s.first, "unsupported Python construct %q (.aurora files are evaluated as Starlark; see the client/config package documentation)", m[1])
		}
		if strings.HasPrefix(s.text, "@") {
			return "", nil, errAt(s.first, "unsupported Python construct: decorators")
		}
		if printRe.MatchString(s.text) {
			return "", nil, errAt(s.first, "unsupported Python construct: the Python 2 print statement (write print(...))")
		}
		switch {
		case importRe.MatchString(s.text) && s.first == s.last:
			m := importRe.FindStringSubmatch(s.text)
			var parts []string
			for _, item := range strings.Split(m[1], ",") {
				am := asRe.FindStringSubmatch(strings.TrimSpace(item))
				if am == nil {
					return "", nil, errAt(s.first, "cannot parse import %q", strings.TrimSpace(item))
				}
				mod, as := am[1], am[2]
				if as == "" {
					// import os.path binds os.
					top, _, _ := strings.Cut(mod, ".")
					parts = append(parts, fmt.Sprintf("%s = __import__(%q)", top, top))
					if top != mod {
						parts = append(parts, fmt.Sprintf("__import__(%q)", mod))
					}
					continue
				}
				parts = append(parts, fmt.Sprintf("%s = __import__(%q)", as, mod))
			}
			lines[s.first] = ind + strings.Join(parts, "; ")
		case fromRe.MatchString(s.text) && s.first == s.last:
			m := fromRe.FindStringSubmatch(s.text)
			if strings.TrimSpace(m[2]) == "*" {
				return "", nil, errAt(s.first, "unsupported Python construct: from %s import * (name what you import)", m[1])
			}
			var parts []string
			for _, item := range strings.Split(strings.Trim(m[2], "() "), ",") {
				am := asRe.FindStringSubmatch(strings.TrimSpace(item))
				if am == nil || strings.Contains(am[1], ".") {
					return "", nil, errAt(s.first, "cannot parse import %q", strings.TrimSpace(item))
				}
				as := am[2]
				if as == "" {
					as = am[1]
				}
				parts = append(parts, fmt.Sprintf("%s = __import__(%q).%s", as, m[1], am[1]))
			}
			lines[s.first] = ind + strings.Join(parts, "; ")
		case strings.HasPrefix(s.text, "include(") || strings.HasPrefix(s.text, "include ("):
			m := includeRe.FindStringSubmatch(s.text)
			if m == nil || s.first != s.last {
				return "", nil, errAt(s.first, "include() takes one literal path, e.g. include('base.aurora')")
			}
			if s.indent != 0 {
				return "", nil, errAt(s.first, "include() is only supported at the top level of a file")
			}
			incs = append(incs, include{path: m[1] + m[2], line: s.first + 1})
			lines[s.first] = "pass"
		case strings.HasPrefix(s.text, "class ") || strings.HasPrefix(s.text, "class\t"):
			m := classRe.FindStringSubmatch(s.text)
			if m == nil || s.first != s.last {
				return "", nil, errAt(s.first, "cannot parse class statement (expected: class Name(Struct):)")
			}
			name, base, rest := m[1], m[2], m[3]
			if base == "" {
				return "", nil, errAt(s.first, "class %s: only subclasses of Struct are supported (write class %s(Struct):)", name, name)
			}
			header := fmt.Sprintf("%s%s = __class__(%q, %s", ind, name, name, base)
			if rest != "" && !strings.HasPrefix(rest, "#") {
				if rest != "pass" {
					return "", nil, errAt(s.first, "class %s: put the fields on their own lines", name)
				}
				lines[s.first] = header + ")"
				continue
			}
			lines[s.first] = header + ","
			// The body: following statements indented deeper.
			lastField := -1
			for si+1 < len(stmts) && stmts[si+1].indent > s.indent {
				si++
				b := stmts[si]
				switch {
				case b.text == "pass" || strings.HasPrefix(b.text, "pass ") || strings.HasPrefix(b.text, "pass#"):
					lines[b.first] = ""
				case b.text[0] == '\'' || b.text[0] == '"':
					for l := b.first; l <= b.last; l++ {
						lines[l] = ""
					}
				case strings.HasPrefix(b.text, "def "):
					return "", nil, errAt(b.first, "class %s: methods are not supported in Struct classes", name)
				case fieldRe.MatchString(b.text):
					var st lexState
					var comment int
					for l := b.first; l <= b.last; l++ {
						comment, _ = scanLine(lines[l], &st)
					}
					last := lines[b.last]
					if comment >= 0 {
						last = last[:comment]
					}
					lines[b.last] = strings.TrimRight(last, " \t") + ","
					lastField = b.last
				default:
					return "", nil, errAt(b.first, "class %s: only field declarations (name = Default(...), Required(...) or a type) are supported in a Struct class body", name)
				}
			}
			if lastField >= 0 {
				lines[lastField] += ")"
			} else {
				lines[s.first] = header + ")"
			}
		}
	}
	return strings.Join(lines, "\n"), incs, nil
}

type include struct {
	path string
	line int
}
