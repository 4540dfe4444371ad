package cron

import (
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones, whatever the machine has
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

const stamp = "2006-01-02 15:04 MST"

// firings lists the first n firings of schedule strictly after from
// (written in loc, layout "2006-01-02 15:04"), formatted with stamp.
func firings(t *testing.T, schedule string, loc *time.Location, from string, n int) string {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", from, loc)
	if err != nil {
		t.Fatal(err)
	}
	s := MustParse(schedule)
	var out []string
	for range n {
		next := s.Next(at, loc)
		if next.IsZero() {
			out = append(out, "never")
			break
		}
		if !next.After(at) {
			t.Fatalf("%q: Next(%v) = %v, not after it", schedule, at, next)
		}
		if next.Location() != loc {
			t.Errorf("%q: Next returned a time in %v, want %v", schedule, next.Location(), loc)
		}
		out = append(out, next.Format(stamp))
		at = next
	}
	return strings.Join(out, ", ")
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name, schedule, from string
		n                    int
		want                 string
	}{
		{"every minute", "* * * * *", "2024-01-01 00:00", 3,
			"2024-01-01 00:01 GMT, 2024-01-01 00:02 GMT, 2024-01-01 00:03 GMT"},
		{"every 5 minutes across the hour", "*/5 * * * *", "2024-01-01 10:52", 3,
			"2024-01-01 10:55 GMT, 2024-01-01 11:00 GMT, 2024-01-01 11:05 GMT"},
		{"strictly after a firing", "0 12 * * *", "2024-01-01 12:00", 2,
			"2024-01-02 12:00 GMT, 2024-01-03 12:00 GMT"},
		{"year end", "59 23 31 12 *", "2023-06-01 00:00", 2,
			"2023-12-31 23:59 GMT, 2024-12-31 23:59 GMT"},
		{"day 31 skips short months", "0 0 31 * *", "2024-01-31 00:00", 4,
			"2024-03-31 00:00 GMT, 2024-05-31 00:00 GMT, 2024-07-31 00:00 GMT, 2024-08-31 00:00 GMT"},
		{"day 30 skips February", "0 0 30 * *", "2024-01-30 00:00", 2,
			"2024-03-30 00:00 GMT, 2024-04-30 00:00 GMT"},
		{"last days across month ends", "0 6 28-31 * *", "2023-02-27 00:00", 5,
			"2023-02-28 06:00 GMT, 2023-03-28 06:00 GMT, 2023-03-29 06:00 GMT, 2023-03-30 06:00 GMT, 2023-03-31 06:00 GMT"},
		{"leap day", "0 0 29 2 *", "2023-01-01 00:00", 3,
			"2024-02-29 00:00 GMT, 2028-02-29 00:00 GMT, 2032-02-29 00:00 GMT"},
		{"leap day skips 2100", "0 0 29 2 *", "2097-01-01 00:00", 1,
			"2104-02-29 00:00 GMT"},
		{"February 31 never", "0 0 31 2 *", "2024-01-01 00:00", 1, "never"},
		{"April 31 never", "0 0 31 APR *", "2024-01-01 00:00", 1, "never"},
		{"Fridays at 17:00", "0 17 * * FRI", "2024-02-27 00:00", 3,
			"2024-03-01 17:00 GMT, 2024-03-08 17:00 GMT, 2024-03-15 17:00 GMT"},
		{"weekdays across a month end", "30 8 * * MON-FRI", "2024-04-26 09:00", 3,
			"2024-04-29 08:30 GMT, 2024-04-30 08:30 GMT, 2024-05-01 08:30 GMT"},
		{"Sundays are 0", "0 0 * * 0", "2024-01-01 00:00", 2,
			"2024-01-07 00:00 GMT, 2024-01-14 00:00 GMT"},
		{"1st and 15th", "0 3 1,15 * *", "2024-01-15 03:00", 3,
			"2024-02-01 03:00 GMT, 2024-02-15 03:00 GMT, 2024-03-01 03:00 GMT"},
		{"quarterly", "0 0 1 */3 *", "2024-01-01 00:00", 3,
			"2024-04-01 00:00 GMT, 2024-07-01 00:00 GMT, 2024-10-01 00:00 GMT"},
		{"Saturday 29 February 2020", "0 0 * FEB SAT", "2020-02-28 00:00", 2,
			"2020-02-29 00:00 GMT, 2021-02-06 00:00 GMT"},
		{"stepped range", "10-30/10 1 * * *", "2024-01-01 00:00", 4,
			"2024-01-01 01:10 GMT, 2024-01-01 01:20 GMT, 2024-01-01 01:30 GMT, 2024-01-02 01:10 GMT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firings(t, tc.schedule, mustLoad(t, "GMT"), tc.from, tc.n); got != tc.want {
				t.Errorf("%q after %s:\n got: %s\nwant: %s", tc.schedule, tc.from, got, tc.want)
			}
		})
	}
}

// Around daylight saving time changes (see the package documentation).
func TestNextDST(t *testing.T) {
	for _, tc := range []struct {
		name, zone, schedule, from string
		n                          int
		want                       string
	}{
		// America/New_York springs forward at 2024-03-10 02:00 EST -> 03:00 EDT.
		{"NY spring forward: 02:30 is skipped", "America/New_York", "30 2 * * *", "2024-03-09 00:00", 3,
			"2024-03-09 02:30 EST, 2024-03-11 02:30 EDT, 2024-03-12 02:30 EDT"},
		{"NY spring forward: 03:30 fires", "America/New_York", "30 3 * * *", "2024-03-09 12:00", 2,
			"2024-03-10 03:30 EDT, 2024-03-11 03:30 EDT"},
		{"NY spring forward: every 30 minutes", "America/New_York", "*/30 * * * *", "2024-03-10 01:00", 3,
			"2024-03-10 01:30 EST, 2024-03-10 03:00 EDT, 2024-03-10 03:30 EDT"},
		// It falls back at 2024-11-03 02:00 EDT -> 01:00 EST.
		{"NY fall back: 02:30 fires once", "America/New_York", "30 2 * * *", "2024-11-02 12:00", 2,
			"2024-11-03 02:30 EST, 2024-11-04 02:30 EST"},
		{"NY fall back: 01:30 fires at its first occurrence only", "America/New_York", "30 1 * * *", "2024-11-02 12:00", 2,
			"2024-11-03 01:30 EDT, 2024-11-04 01:30 EST"},
		{"NY fall back: the repeated hour does not refire", "America/New_York", "*/20 * * * *", "2024-11-03 00:50", 6,
			"2024-11-03 01:00 EDT, 2024-11-03 01:20 EDT, 2024-11-03 01:40 EDT, 2024-11-03 02:00 EST, 2024-11-03 02:20 EST, 2024-11-03 02:40 EST"},
		{"NY: 24 hours apart in wall clock, 23 and 25 in real time", "America/New_York", "0 12 * * *", "2024-03-09 13:00", 1,
			"2024-03-10 12:00 EDT"},
		// Europe/London springs forward at 2024-03-31 01:00 GMT -> 02:00 BST
		// and falls back at 2024-10-27 02:00 BST -> 01:00 GMT.
		{"London spring forward: 02:30 fires", "Europe/London", "30 2 * * *", "2024-03-30 12:00", 2,
			"2024-03-31 02:30 BST, 2024-04-01 02:30 BST"},
		{"London spring forward: 01:30 is skipped", "Europe/London", "30 1 * * *", "2024-03-30 12:00", 2,
			"2024-04-01 01:30 BST, 2024-04-02 01:30 BST"},
		{"London fall back: 02:30 fires once", "Europe/London", "30 2 * * *", "2024-10-26 12:00", 2,
			"2024-10-27 02:30 GMT, 2024-10-28 02:30 GMT"},
		{"London fall back: 01:30 fires at its first occurrence only", "Europe/London", "30 1 * * *", "2024-10-26 12:00", 2,
			"2024-10-27 01:30 BST, 2024-10-28 01:30 GMT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firings(t, tc.schedule, mustLoad(t, tc.zone), tc.from, tc.n); got != tc.want {
				t.Errorf("%q in %s after %s:\n got: %s\nwant: %s", tc.schedule, tc.zone, tc.from, got, tc.want)
			}
		})
	}
}

// Next from inside the repeated hour of a fall-back: the first occurrences
// are already past, so the next firing is after the repeated hour.
func TestNextFromSecondOccurrence(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	s := MustParse("*/15 * * * *")
	after := time.Date(2024, 11, 3, 6, 10, 0, 0, time.UTC) // 01:10 EST, the second 01:10
	if got := s.Next(after, ny).Format(stamp); got != "2024-11-03 02:00 EST" {
		t.Errorf("Next(01:10 EST) = %s, want 2024-11-03 02:00 EST", got)
	}
	after = time.Date(2024, 11, 3, 5, 10, 0, 0, time.UTC) // 01:10 EDT, the first
	if got := s.Next(after, ny).Format(stamp); got != "2024-11-03 01:15 EDT" {
		t.Errorf("Next(01:10 EDT) = %s, want 2024-11-03 01:15 EDT", got)
	}
}

func TestNextSecondsAndZones(t *testing.T) {
	s := MustParse("0 * * * *")
	// Seconds and nanoseconds of after are ignored except for "strictly after".
	at := time.Date(2024, 1, 1, 9, 59, 59, 999999999, time.UTC)
	if got := s.Next(at, nil); !got.Equal(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("Next(%v) = %v", at, got)
	}
	at = time.Date(2024, 1, 1, 10, 0, 0, 1, time.UTC)
	if got := s.Next(at, nil); !got.Equal(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("Next(%v) = %v", at, got)
	}
	// A nil location is GMT, and after's own location does not matter.
	tokyo := mustLoad(t, "Asia/Tokyo")
	at = time.Date(2024, 1, 1, 9, 30, 0, 0, tokyo) // 00:30 GMT
	got := MustParse("0 1 * * *").Next(at, nil)
	if got.Format(stamp) != "2024-01-01 01:00 GMT" {
		t.Errorf("Next in GMT = %s", got.Format(stamp))
	}
	// The same schedule in Tokyo.
	if got := MustParse("0 1 * * *").Next(at, tokyo).Format(stamp); got != "2024-01-02 01:00 JST" {
		t.Errorf("Next in Tokyo = %s", got)
	}
	// The zero Schedule never fires.
	if got := (Schedule{}).Next(at, nil); !got.IsZero() {
		t.Errorf("zero Schedule fires at %v", got)
	}
}

func TestMatches(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	s := MustParse("30 1 * * *")
	first := time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC)  // 01:30 EDT
	second := time.Date(2024, 11, 3, 6, 30, 0, 0, time.UTC) // 01:30 EST
	if !s.Matches(first, ny) || s.Matches(second, ny) {
		t.Error("Matches: want the first 01:30 only")
	}
	if s.Matches(first.Add(time.Second), ny) {
		t.Error("Matches: a time that is not a whole minute")
	}
	if !MustParse("0 12 * * *").Matches(time.Date(2024, 5, 5, 12, 0, 0, 0, time.UTC), nil) {
		t.Error("Matches in GMT")
	}
}

func TestLoadLocation(t *testing.T) {
	for name, want := range map[string]string{"": "GMT", "GMT": "GMT", "UTC": "UTC", "America/New_York": "America/New_York"} {
		loc, err := LoadLocation(name)
		if err != nil || loc.String() != want {
			t.Errorf("LoadLocation(%q) = %v, %v; want %s", name, loc, err, want)
		}
	}
	if _, err := LoadLocation("Mars/Olympus_Mons"); err == nil || !strings.Contains(err.Error(), "Mars/Olympus_Mons") {
		t.Errorf("LoadLocation of an unknown zone: %v", err)
	}
	if DefaultTimezone != "GMT" {
		t.Errorf("DefaultTimezone = %q", DefaultTimezone)
	}
}

// scan is the obvious, slow Next for zones whose changes are whole hours:
// try every minute, keep those whose wall clock matches and whose wall clock
// was not already shown an hour earlier (the repeat of a fall-back).
func scan(s Schedule, after time.Time, loc *time.Location, limit time.Duration) time.Time {
	t := after.Truncate(time.Minute).Add(time.Minute)
	for end := after.Add(limit); !t.After(end); t = t.Add(time.Minute) {
		w := t.In(loc)
		if s.set[Minute]&(1<<w.Minute()) == 0 || s.set[Hour]&(1<<w.Hour()) == 0 ||
			s.set[DayOfMonth]&(1<<w.Day()) == 0 || s.set[Month]&(1<<int(w.Month())) == 0 ||
			s.set[DayOfWeek]&(1<<int(w.Weekday())) == 0 {
			continue
		}
		if e := t.Add(-time.Hour).In(loc); e.Hour() == w.Hour() && e.Minute() == w.Minute() && e.Day() == w.Day() {
			continue
		}
		return t
	}
	return time.Time{}
}

// randomSchedule builds a valid schedule that fires often enough for scan.
func randomSchedule(r *rand.Rand) string {
	pick := func(lo, hi int, names []string) string {
		switch r.Intn(6) {
		case 0, 1:
			return "*"
		case 2:
			return "*/" + itoa(1+r.Intn(hi-lo+1))
		case 3:
			a := lo + r.Intn(hi-lo+1)
			b := a + r.Intn(hi-a+1)
			return itoa(a) + "-" + itoa(b)
		case 4:
			var items []string
			for range 1 + r.Intn(4) {
				v := lo + r.Intn(hi-lo+1)
				if names != nil && r.Intn(2) == 0 {
					items = append(items, names[v-lo])
				} else {
					items = append(items, itoa(v))
				}
			}
			return strings.Join(items, ",")
		default:
			a := lo + r.Intn(hi-lo)
			b := a + 1 + r.Intn(hi-a)
			if b < 2 {
				return "*"
			}
			st := 1 + r.Intn(b)
			if st >= b {
				st = 1
			}
			return itoa(a) + "-" + itoa(b) + "/" + itoa(st)
		}
	}
	days := []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	dom, dow := pick(1, 31, nil), "*"
	if r.Intn(2) == 0 {
		dom, dow = "*", pick(0, 6, days)
	}
	return strings.Join([]string{pick(0, 59, nil), pick(0, 23, nil), dom, "*", dow}, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestNextAgainstScan compares Next with scan for random schedules and
// starting points around the DST changes of New York and London.
func TestNextAgainstScan(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	zones := []*time.Location{mustLoad(t, "GMT"), mustLoad(t, "America/New_York"), mustLoad(t, "Europe/London")}
	starts := []time.Time{
		time.Date(2024, 3, 9, 22, 0, 0, 0, time.UTC),
		time.Date(2024, 3, 30, 22, 0, 0, 0, time.UTC),
		time.Date(2024, 10, 26, 22, 0, 0, 0, time.UTC),
		time.Date(2024, 11, 3, 4, 0, 0, 0, time.UTC),
		time.Date(2023, 12, 31, 20, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 28, 20, 0, 0, 0, time.UTC),
	}
	const limit = 3 * 24 * time.Hour
	checked := 0
	for i := range 300 {
		text := randomSchedule(r)
		s, err := Parse(text)
		if err != nil {
			t.Fatalf("randomSchedule made %q: %v", text, err)
		}
		loc := zones[i%len(zones)]
		at := starts[r.Intn(len(starts))].Add(time.Duration(r.Intn(6*60)) * time.Minute)
		for range 30 {
			want := scan(s, at, loc, limit)
			if want.IsZero() {
				break
			}
			got := s.Next(at, loc)
			if !got.Equal(want) {
				t.Fatalf("%q in %v: Next(%v) = %v, scan says %v", text, loc, at.In(loc), got.In(loc), want.In(loc))
			}
			at = got
			checked++
		}
	}
	if checked < 2000 {
		t.Errorf("only %d comparisons; the random schedules fire too rarely", checked)
	}
}

func BenchmarkNext(b *testing.B) {
	ny := mustLoad(b, "America/New_York")
	s := MustParse("30 2 * * MON-FRI")
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		at = s.Next(at, ny)
	}
}

func BenchmarkNextNever(b *testing.B) {
	s := MustParse("0 0 31 2 *")
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		s.Next(at, nil)
	}
}
