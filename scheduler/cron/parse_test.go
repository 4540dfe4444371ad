package cron

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		in, canonical string
	}{
		{"* * * * *", "* * * * *"},
		{"*/5 * * * *", "0,5,10,15,20,25,30,35,40,45,50,55 * * * *"},
		{"*/15 * * * *", "0,15,30,45 * * * *"},
		{"0 17 * * FRI", "0 17 * * 5"},
		{"0 3 1,15 * *", "0 3 1,15 * *"},
		{"30 2 * * *", "30 2 * * *"},
		{"1-50/2 * * * *", "1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31,33,35,37,39,41,43,45,47,49 * * * *"},
		{"0-30/10 * * * *", "0,10,20,30 * * * *"},
		{"* */2 * * *", "* 0,2,4,6,8,10,12,14,16,18,20,22 * * *"},
		{"0 0 * * MON-SAT", "0 0 * * 1-6"},
		{"0 0 * * mon-fri", "0 0 * * 1-5"},
		{"0 0 * * Sun,sat", "0 0 * * 0,6"},
		{"0 0 * * SUN-SAT", "0 0 * * *"},
		{"0 0 * * 0-6", "0 0 * * *"},
		{"0 0 * * 0,1,2,3,4,5,6", "0 0 * * *"},
		{"0 0 1 JAN *", "0 0 1 1 *"},
		{"0 0 1 jan-mar/2 *", "0 0 1 1,3 *"},
		{"0 0 1 JAN,FEB-DEC *", "0 0 1 * *"},
		{"0 0 1 * *", "0 0 1 * *"},
		{"0 0 1-31 * MON", "0 0 * * 1"},    // day-of-month covers every day: not restricted
		{"0 0 15 * 0-6", "0 0 15 * *"},     // day-of-week covers every day: not restricted
		{"0 0 31 2 *", "0 0 31 2 *"},       // never fires, but Aurora accepts it
		{"*/60 * * * *", "0 * * * *"},      // */S has no upper bound on S
		{"*/100 */100 * * *", "0 0 * * *"}, // nor here
		{"05 007 * * *", "5 7 * * *"},      // leading zeros
		{"1,,2 * * * *", "1-2 * * * *"},    // empty items are ignored
		{",3 * * * *", "3 * * * *"},
		{"0,1-57,58 * * * *", "0-58 * * * *"},
		{"1-50,0,51-59 * * * sun-sat", "* * * * *"},
		{"0\t0 \t * *  *", "0 0 * * *"}, // any run of blanks separates fields
		{"59 23 31 12 *", "59 23 31 12 *"},
		{"0 0 * DEC SAT", "0 0 * 12 6"},
		{"0-59 0-23 * 1-12 *", "* * * * *"},
		{"1-2/1 * * * *", "1-2 * * * *"},
	} {
		s, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := s.String(); got != tc.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.canonical)
		}
		again, err := Parse(s.String())
		if err != nil || again != s {
			t.Errorf("Parse(%q) does not round-trip: %v, %v", s.String(), again, err)
		}
	}
}

// Aurora's CrontabEntryTest equivalences: schedules that match the same
// minutes are ==.
func TestParseEquivalences(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		equal bool
	}{
		{"* * * * *", "0-59 * * * *", true},
		{"* * * * *", "0-57,58,59 * * * *", true},
		{"* * * * *", "* 23,1,2,4,0-22 * * *", true},
		{"* * * * *", "1-50,0,51-59 * * * sun-sat", true},
		{"* * * * *", "1 * * * *", false},
		{"1,2,3 * * * *", "1-3 * * * *", true},
		{"* 0-22 * * *", "* * * * *", false},
		{"* 0-23 * * *", "* * * * *", true},
		{"1 1 1-30 * *", "1 1 * * *", false},
		{"1 1 1-31 * *", "1 1 * * *", true},
		{"1 1 * JAN,FEB-NOV *", "1 1 * * *", false},
		{"1 1 * JAN,FEB-DEC *", "1 1 * * *", true},
		{"* * * * SUN", "* * * * SAT", false},
		{"* * * * 0", "* * * * SUN", true},
		{"*/15 * * * *", "0,15,30,45 * * * *", true},
		{"* */2 * * *", "0-59 0,2,4,6,8,10,12-23/2  * * *", true},
	} {
		a, b := MustParse(tc.a), MustParse(tc.b)
		if (a == b) != tc.equal {
			t.Errorf("%q == %q is %v, want %v", tc.a, tc.b, a == b, tc.equal)
		}
	}
}

// invalid are schedules Parse must refuse; their messages are in
// testdata/invalid.golden (go test -run TestParseInvalid -update rewrites it).
var invalid = []struct {
	in    string
	field int // -1: the schedule as a whole
}{
	// The shape of the schedule.
	{"", -1},
	{"   ", -1},
	{"@daily", -1},
	{"@reboot", -1},
	{"@every 5m", -1},
	{" * * * * *", -1},
	{"* * * * * ", -1},
	{"* * * *", -1},
	{"* * **", -1},
	{"0 * * * * *", -1},
	{"0 0 12 * * ? 2024", -1},
	{"*\u00a0* * * *", -1}, // a no-break space is not a blank (Java's \s)
	// Values out of range.
	{"60 * * * *", Minute},
	{"0-60 * * * *", Minute},
	{"* 24 * * *", Hour},
	{"0-59 0-59 * * *", Hour},
	{"* * 0 * *", DayOfMonth},
	{"* * 00 * *", DayOfMonth},
	{"* * 32 * *", DayOfMonth},
	{"* * * 0 *", Month},
	{"* * * 13 *", Month},
	{"* * * * 7", DayOfWeek},
	{"* * * * 1-7", DayOfWeek},
	{"* * * * 8", DayOfWeek},
	{"99999999999999999999 * * * *", Minute},
	// Ranges.
	{"5-1 * * * *", Minute},
	{"* 22-2 * * *", Hour},
	{"* * * * MON-SUN", DayOfWeek},
	{"5 5 * MAR-JAN *", Month},
	{"-5 * * * *", Minute},
	{"1-2-3 * * * *", Minute},
	{"*-5 * * * *", Minute},
	{"1- * * * *", Minute},
	// Steps.
	{"*/0 * * * *", Minute},
	{"0-59/0 * * * *", Minute},
	{"0-59/60 * * * *", Minute},
	{"1-5/5 * * * *", Minute},
	{"0-0/1 * * * *", Minute},
	{"1/1 * * * *", Minute},
	{"0/5 * * * *", Minute},
	{"59/5 * * * *", Minute},
	{"*/ * * * *", Minute},
	{"*/x * * * *", Minute},
	{"*/5/2 * * * *", Minute},
	{"*/-1 * * * *", Minute},
	{"* * * * */MON", DayOfWeek},
	// Names.
	{"MON * * * *", Minute},
	{"* * JAN * *", DayOfMonth},
	{"* * * JULY *", Month},
	{"* * * * MONDAY", DayOfWeek},
	{"* * * * SUN5", DayOfWeek},
	{"* * * * \u017fun", DayOfWeek}, // U+017F upper-cases to S, but is not ASCII
	{"* * * MON *", Month},
	{"* * * * JAN", DayOfWeek},
	// Quartz's extensions and other syntax Aurora does not have.
	{"* * ? * MON", DayOfMonth},
	{"* * L * *", DayOfMonth},
	{"* * 15W * *", DayOfMonth},
	{"* * * * 5L", DayOfWeek},
	{"* * * * 5#3", DayOfWeek},
	{"+5 * * * *", Minute},
	{"5.0 * * * *", Minute},
	{"٣ * * * *", Minute}, // an Arabic-Indic digit is not \d
	// Lists.
	{", * * * *", Minute},
	{"1,60 * * * *", Minute},
	{"1,2,x * * * *", Minute},
	// Both day fields restricted.
	{"* * 1 * 1", -1},
	{"0 0 15 * FRI", -1},
	{"0 0 1-30 * 0-5", -1},
	{"0 0 */2 * MON-FRI", -1},
}

func TestParseInvalid(t *testing.T) {
	var golden strings.Builder
	for _, tc := range invalid {
		s, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tc.in, s)
			continue
		}
		if s != (Schedule{}) {
			t.Errorf("Parse(%q) returned %v with its error", tc.in, s)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): %T is not a *ParseError", tc.in, err)
			continue
		}
		if pe.Field != tc.field {
			t.Errorf("Parse(%q): field %d (%s), want %d (%s): %v", tc.in, pe.Field, FieldName(pe.Field), tc.field, FieldName(tc.field), err)
		}
		if pe.Schedule != tc.in {
			t.Errorf("Parse(%q): Schedule = %q", tc.in, pe.Schedule)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "Invalid cron schedule: ") {
			t.Errorf("Parse(%q): %q lacks Aurora's prefix", tc.in, msg)
		}
		if tc.field >= 0 && !strings.Contains(msg, FieldName(tc.field)+" field ") {
			t.Errorf("Parse(%q): %q does not name the %s field", tc.in, msg, FieldName(tc.field))
		}
		fmt.Fprintf(&golden, "%q\n\t%s\n", tc.in, msg)
	}
	path := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(path, []byte(golden.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := golden.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("%s:%d:\n got: %s\nwant: %s", path, i+1, g, w)
				break
			}
		}
		t.Errorf("messages differ from %s; if the change is intended, rerun with -update", path)
	}
}

func TestParseErrorMessages(t *testing.T) {
	// Spot checks, independent of the golden file: the message says which
	// field is wrong and why.
	for _, tc := range []struct{ in, want string }{
		{"* * * * 7", `Invalid cron schedule: "* * * * 7": day-of-week field "7": 7 is outside 0-6 (Sunday is 0 or SUN; 7 is not accepted)`},
		{"@daily", `Invalid cron schedule: "@daily": shortcuts such as "@daily" are not supported; write the 5 fields: minute hour day-of-month month day-of-week`},
		{"* * 1 * 1", `Invalid cron schedule: "* * 1 * 1": day-of-month "1" and day-of-week "1" are both restricted; only one of them may be (make the other *)`},
		{"1,60 * * * *", `Invalid cron schedule: "1,60 * * * *": minute field "1,60": "60": 60 is outside 0-59`},
		{"* * * * MON-SUN", `Invalid cron schedule: "* * * * MON-SUN": day-of-week field "MON-SUN": the range goes backwards (MON-SUN is 1-0); ranges do not wrap around`},
	} {
		_, err := Parse(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q):\n got: %v\nwant: %s", tc.in, err, tc.want)
		}
	}
}

func TestValuesAndFieldName(t *testing.T) {
	s := MustParse("0,30 9-11 * JAN,JUL MON-WED")
	for f, want := range [][]int{{0, 30}, {9, 10, 11}, nil, {1, 7}, {1, 2, 3}} {
		if f == DayOfMonth {
			if got := len(s.Values(f)); got != 31 {
				t.Errorf("day-of-month: %d values, want 31", got)
			}
			continue
		}
		if got := fmt.Sprint(s.Values(f)); got != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", FieldName(f), got, want)
		}
	}
	if FieldName(-1) != "" || FieldName(5) != "" || FieldName(DayOfWeek) != "day-of-week" {
		t.Error("FieldName")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse of a bad schedule did not panic")
		}
	}()
	MustParse("bad")
}
