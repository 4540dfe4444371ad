// Package transcripttest holds what the engines' transcript tests share on
// top of github.com/cockroachdb/datadriven: walking a testdata directory
// with one fresh script per file, a transcript clock moved by a command's
// at= argument, and reading a command's arguments and repeat= count.
//
// Every engine's transcripts use datadriven's file format: a directive
// line "command args", optional input lines, a "----" line and the
// expected output, ended by a blank line; "#" lines between blocks are
// comments; go test -rewrite regenerates the expected output. Arguments
// are datadriven's: a bare word, key=value, or key=(a value with spaces)
// (a comma inside the parentheses would split the value, so Words
// refuses one).
package transcripttest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// Script runs one command of a transcript and returns its output. An
// error fails the test at the command's position.
type Script func(t *testing.T, td *datadriven.TestData) (string, error)

// Run runs every file under dir as a subtest, with the script newScript
// makes for that file.
func Run(t *testing.T, dir string, newScript func(t *testing.T) Script) {
	t.Helper()
	datadriven.Walk(t, dir, func(t *testing.T, path string) {
		s := newScript(t)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out, err := s(t, td)
			if err != nil {
				t.Fatalf("%s: %s: %v", td.Pos, td.FullCmd(), err)
			}
			return out
		})
	})
}

// Clock is a transcript's clock. It starts at Base; a command's at=D sets
// it to D after Base, at=+D moves it D on, and it never goes back.
type Clock struct {
	Base, Now time.Time
}

// NewClock returns a clock at base.
func NewClock(base time.Time) *Clock { return &Clock{Base: base, Now: base} }

// Advance moves the clock as the command's at= argument says, if it has
// one.
func (c *Clock) Advance(td *datadriven.TestData) error {
	a, ok := td.Arg("at")
	if !ok {
		return nil
	}
	if len(a.Vals) != 1 {
		return fmt.Errorf("at needs one offset, got %v", a.Vals)
	}
	v := a.Vals[0]
	d, err := time.ParseDuration(strings.TrimPrefix(v, "+"))
	if err != nil {
		return fmt.Errorf("at=%s: %w", v, err)
	}
	now := c.Base.Add(d)
	if strings.HasPrefix(v, "+") {
		now = c.Now.Add(d)
	}
	if now.Before(c.Now) {
		return fmt.Errorf("at=%s: time goes back from %s", v, c.Offset(c.Now))
	}
	c.Now = now
	return nil
}

// Offset is t as a duration since the clock's base ("1m30s").
func (c *Clock) Offset(t time.Time) string { return t.Sub(c.Base).String() }

// Words returns the command's arguments in order as words, leaving out
// the keys in skip: a bare argument as its key, key=value as
// "key=value" (with the value of key=(...) unwrapped).
func Words(td *datadriven.TestData, skip ...string) ([]string, error) {
	return words(td.CmdArgs, skip)
}

func words(args []datadriven.CmdArg, skip []string) ([]string, error) {
	var out []string
next:
	for _, a := range args {
		for _, k := range skip {
			if a.Key == k {
				continue next
			}
		}
		switch len(a.Vals) {
		case 0:
			out = append(out, a.Key)
		case 1:
			out = append(out, a.Key+"="+a.Vals[0])
		default:
			return nil, fmt.Errorf("%s has %d values (%s): a value may not contain a comma", a.Key, len(a.Vals), strings.Join(a.Vals, ", "))
		}
	}
	return out, nil
}

// Repeat is the command's repeat=N argument, 1 without one.
func Repeat(td *datadriven.TestData) (int, error) {
	a, ok := td.Arg("repeat")
	if !ok {
		return 1, nil
	}
	if len(a.Vals) != 1 {
		return 0, fmt.Errorf("repeat needs one count, got %v", a.Vals)
	}
	n, err := strconv.Atoi(a.Vals[0])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("repeat=%s: want a positive count", a.Vals[0])
	}
	return n, nil
}

// Line is one line of a command's input, parsed as a directive.
type Line struct {
	N     int      // line number within the input, from 1
	Cmd   string   // the first word
	Words []string // the arguments, as Words gives them
}

// Lines parses the command's input lines with datadriven's directive
// syntax, skipping blank lines and "#" comments.
func Lines(td *datadriven.TestData) ([]Line, error) {
	var out []Line
	for i, l := range strings.Split(td.Input, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		cmd, args, err := datadriven.ParseLine(l)
		if err != nil {
			return nil, fmt.Errorf("input line %d: %w", i+1, err)
		}
		w, err := words(args, nil)
		if err != nil {
			return nil, fmt.Errorf("input line %d: %w", i+1, err)
		}
		out = append(out, Line{N: i + 1, Cmd: cmd, Words: w})
	}
	return out, nil
}
