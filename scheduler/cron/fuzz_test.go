package cron

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse: Parse never panics; what it accepts round-trips through String
// and fires only at matching minutes; what it refuses gets a *ParseError
// with Aurora's prefix naming the field.
func FuzzParse(f *testing.F) {
	for _, tc := range invalid {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"* * * * *", "*/5 * * * *", "0 17 * * FRI", "0 3 1,15 * *", "1-50/2 * * * *",
		"0 0 1 jan-mar/2 *", "0 0 29 2 *", "0 0 31 2 *", "1,,2 * * * SUN-SAT", "59 23 31 12 *",
	} {
		f.Add(s)
	}
	start := time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): %T", in, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "Invalid cron schedule: ") || pe.Reason == "" {
				t.Fatalf("Parse(%q): message %q", in, msg)
			}
			if pe.Field >= 0 && !strings.Contains(msg, FieldName(pe.Field)+" field") {
				t.Fatalf("Parse(%q): message %q does not name field %d", in, msg, pe.Field)
			}
			if s != (Schedule{}) {
				t.Fatalf("Parse(%q): a schedule with the error", in)
			}
			return
		}
		for i := 0; i < len(in); i++ {
			if in[i] >= utf8.RuneSelf {
				t.Fatalf("Parse accepted non-ASCII %q", in)
			}
		}
		canon := s.String()
		again, err := Parse(canon)
		if err != nil || again != s {
			t.Fatalf("Parse(%q).String() = %q, which parses to %v, %v", in, canon, again, err)
		}
		for f := range numFields {
			if s.set[f] == 0 || s.set[f]&^fullMask(f) != 0 {
				t.Fatalf("Parse(%q): field %d set %b", in, f, s.set[f])
			}
		}
		if !s.full(DayOfMonth) && !s.full(DayOfWeek) {
			t.Fatalf("Parse(%q): both day fields restricted", in)
		}
		at := start
		for range 3 {
			next := s.Next(at, nil)
			if next.IsZero() {
				break
			}
			if !next.After(at) || next.Second() != 0 || !s.Matches(next, nil) {
				t.Fatalf("%q: Next(%v) = %v", in, at, next)
			}
			w := next.In(gmt)
			if s.set[Minute]&(1<<w.Minute()) == 0 || s.set[Hour]&(1<<w.Hour()) == 0 ||
				s.set[DayOfMonth]&(1<<w.Day()) == 0 || s.set[Month]&(1<<int(w.Month())) == 0 ||
				s.set[DayOfWeek]&(1<<int(w.Weekday())) == 0 {
				t.Fatalf("%q: Next(%v) = %v does not match", in, at, next)
			}
			at = next
		}
	})
}
