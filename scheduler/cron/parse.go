package cron

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Field numbers, in the order the fields are written.
const (
	Minute = iota
	Hour
	DayOfMonth
	Month
	DayOfWeek
	numFields
)

type fieldSpec struct {
	name   string
	lo, hi int
	names  map[string]int // accepted value names, upper case
	// what a name is, for error messages ("a month name (JAN-DEC)").
	nameKind string
}

var specs = [numFields]fieldSpec{
	Minute:     {name: "minute", lo: 0, hi: 59},
	Hour:       {name: "hour", lo: 0, hi: 23},
	DayOfMonth: {name: "day-of-month", lo: 1, hi: 31},
	Month: {name: "month", lo: 1, hi: 12, nameKind: "a month name (JAN-DEC)", names: map[string]int{
		"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
	}},
	DayOfWeek: {name: "day-of-week", lo: 0, hi: 6, nameKind: "a day name (SUN-SAT)", names: map[string]int{
		"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6,
	}},
}

// FieldName is the name of field f as error messages spell it
// ("minute", "hour", "day-of-month", "month", "day-of-week").
func FieldName(f int) string {
	if f < 0 || f >= numFields {
		return ""
	}
	return specs[f].name
}

const layout = "minute hour day-of-month month day-of-week"

// Schedule is a parsed cron schedule: the set of values each field matches.
// Two schedules are == exactly when they match the same minutes. The zero
// Schedule matches nothing.
type Schedule struct {
	set [numFields]uint64 // bit v set: value v matches
}

// ParseError is why Parse refused a schedule. Its Error text starts with
// Aurora's "Invalid cron schedule: " and names the field and the reason, so
// it can be returned as is in an INVALID_REQUEST response.
type ParseError struct {
	Schedule string // the schedule as given
	// Field is the offending field (Minute ... DayOfWeek), or -1 when the
	// schedule as a whole is wrong (shape, or day-of-month and day-of-week
	// both restricted).
	Field int
	Text  string // the field's text, "" when Field is -1
	// Reason says what is wrong, e.g. `7 is outside 0-6 (Sunday is 0 or
	// SUN; 7 is not accepted)`.
	Reason string
}

func (e *ParseError) Error() string {
	if e.Field < 0 {
		return fmt.Sprintf("Invalid cron schedule: %q: %s", e.Schedule, e.Reason)
	}
	return fmt.Sprintf("Invalid cron schedule: %q: %s field %q: %s",
		e.Schedule, specs[e.Field].name, e.Text, e.Reason)
}

// isBlank is Java's \s, which separates fields in Aurora's parser.
func isBlank(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// Parse parses a cron schedule with Aurora's rules (see the package
// documentation). The error is a *ParseError.
func Parse(schedule string) (Schedule, error) {
	fail := func(field int, text, format string, args ...any) (Schedule, error) {
		return Schedule{}, &ParseError{Schedule: schedule, Field: field, Text: text, Reason: fmt.Sprintf(format, args...)}
	}
	trimmed := strings.TrimFunc(schedule, isBlank)
	switch {
	case trimmed == "":
		return fail(-1, "", "the schedule is empty; want 5 fields: %s", layout)
	case strings.HasPrefix(trimmed, "@"):
		name, _, _ := strings.Cut(trimmed, " ")
		return fail(-1, "", "shortcuts such as %q are not supported; write the 5 fields: %s", name, layout)
	case trimmed != schedule:
		return fail(-1, "", "blanks before the first or after the last field are not allowed")
	}
	parts := strings.FieldsFunc(schedule, isBlank)
	if len(parts) != numFields {
		return fail(-1, "", "it has %d fields; want 5: %s", len(parts), layout)
	}
	var s Schedule
	for f, text := range parts {
		set, reason := parseField(f, text)
		if reason != "" {
			return fail(f, text, "%s", reason)
		}
		s.set[f] = set
	}
	if !s.full(DayOfMonth) && !s.full(DayOfWeek) {
		return fail(-1, "", "day-of-month %q and day-of-week %q are both restricted; only one of them may be (make the other *)",
			parts[DayOfMonth], parts[DayOfWeek])
	}
	return s, nil
}

// MustParse is Parse for schedules known to be valid; it panics on error.
func MustParse(schedule string) Schedule {
	s, err := Parse(schedule)
	if err != nil {
		panic(err)
	}
	return s
}

// fullMask is the set of every value of field f.
func fullMask(f int) uint64 {
	sp := specs[f]
	return (^uint64(0) >> (63 - sp.hi)) &^ (1<<sp.lo - 1)
}

func (s Schedule) full(f int) bool { return s.set[f] == fullMask(f) }

// parseField returns the values of one field, or why it is wrong.
func parseField(f int, text string) (uint64, string) {
	var set uint64
	items := 0
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			continue // Aurora omits empty items
		}
		items++
		v, reason := parseItem(f, item)
		if reason != "" {
			if item != text {
				reason = fmt.Sprintf("%q: %s", item, reason)
			}
			return 0, reason
		}
		set |= v
	}
	if items == 0 {
		return 0, "it has no values"
	}
	return set, ""
}

// parseItem parses one comma-separated item: N, *, A-B, */S or A-B/S.
func parseItem(f int, item string) (uint64, string) {
	sp := specs[f]
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, ok := number(stepText)
		switch {
		case !ok:
			return 0, fmt.Sprintf("the step %q is not a number", stepText)
		case n < 1:
			return 0, "the step must be at least 1"
		}
		step = n
	}
	var lo, hi int
	switch {
	case rng == "*":
		lo, hi = sp.lo, sp.hi
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var reason string
		if lo, reason = value(f, a); reason != "" {
			return 0, reason
		}
		if hi, reason = value(f, b); reason != "" {
			return 0, reason
		}
		if lo > hi {
			if lo != atoiOr(a, -1) || hi != atoiOr(b, -1) {
				return 0, fmt.Sprintf("the range goes backwards (%s is %d-%d); ranges do not wrap around", rng, lo, hi)
			}
			return 0, "the range goes backwards; ranges do not wrap around"
		}
		if hasStep && step >= hi {
			return 0, fmt.Sprintf("the step %d must be smaller than the end of the range, %d", step, hi)
		}
	default:
		v, reason := value(f, rng)
		if reason != "" {
			return 0, reason
		}
		if hasStep {
			if v < sp.hi && step < sp.hi {
				return 0, fmt.Sprintf("a step needs * or a range before the slash (*/%d, or %d-%d/%d)", step, v, sp.hi, step)
			}
			return 0, fmt.Sprintf("a step needs * or a range before the slash (*/%d)", step)
		}
		lo, hi = v, v
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << v
	}
	return set, ""
}

// value parses a single value of field f (a number, or a name where the
// field has names), checking its range.
func value(f int, text string) (int, string) {
	sp := specs[f]
	if n, ok := number(text); ok {
		if n < sp.lo || n > sp.hi {
			if f == DayOfWeek && n == 7 {
				return 0, "7 is outside 0-6 (Sunday is 0 or SUN; 7 is not accepted)"
			}
			return 0, fmt.Sprintf("%s is outside %d-%d", text, sp.lo, sp.hi)
		}
		return n, ""
	}
	if n, ok := sp.names[asciiUpper(text)]; ok {
		return n, ""
	}
	switch {
	case text == "*":
		return 0, "* cannot be part of a range"
	case quartzOnly(text):
		return 0, "Quartz's ? L W # are not supported"
	case sp.names == nil && hasLetter(text):
		return 0, "not a number; names are accepted only in the month and day-of-week fields"
	case sp.names != nil && hasLetter(text):
		return 0, "neither a number nor " + sp.nameKind
	}
	return 0, "want a value, *, a range A-B, or a step */S or A-B/S"
}

// number parses a string of ASCII digits (Java's \d+). Values too large for
// any field come back as a large number, which the range check rejects.
func number(text string) (int, bool) {
	if text == "" {
		return 0, false
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return 1 << 30, true // out of int range: certainly out of the field's range
	}
	return n, true
}

func atoiOr(text string, def int) int {
	if n, ok := number(text); ok {
		return n
	}
	return def
}

// quartzOnly reports Quartz's extensions (? L W LW nL nW n#m), which
// Aurora's syntax does not have.
func quartzOnly(text string) bool {
	switch t := strings.ToUpper(text); {
	case t == "?" || t == "L" || t == "W" || t == "LW" || strings.Contains(t, "#"):
		return true
	case len(t) > 1 && (t[len(t)-1] == 'L' || t[len(t)-1] == 'W'):
		_, ok := number(t[:len(t)-1])
		return ok
	}
	return false
}

// asciiUpper upper-cases ASCII letters only, so that no other character
// (such as U+017F, whose upper case is S) can spell a name.
func asciiUpper(text string) string {
	b := []byte(text)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func hasLetter(text string) bool {
	for _, r := range text {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return true
		}
	}
	return false
}

// Values lists the values field f of s matches, in ascending order.
func (s Schedule) Values(f int) []int {
	var out []int
	for m := s.set[f]; m != 0; m &= m - 1 {
		out = append(out, bits.TrailingZeros64(m))
	}
	return out
}

// String is the schedule in Aurora's canonical form: each field * when it
// matches every value, otherwise its values as a comma-separated list of
// single values and runs A-B (numbers, no names). Parse(s.String()) == s.
func (s Schedule) String() string {
	var b strings.Builder
	for f := range numFields {
		if f > 0 {
			b.WriteByte(' ')
		}
		if s.full(f) {
			b.WriteByte('*')
			continue
		}
		vals := s.Values(f)
		for i := 0; i < len(vals); {
			j := i
			for j+1 < len(vals) && vals[j+1] == vals[j]+1 {
				j++
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(vals[i]))
			if j > i {
				b.WriteByte('-')
				b.WriteString(strconv.Itoa(vals[j]))
			}
			i = j + 1
		}
	}
	return b.String()
}
