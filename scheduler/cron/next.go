package cron

import (
	"fmt"
	"math/bits"
	"time"
)

// searchYears bounds the search for the next firing. The sparsest schedule
// that fires at all is February 29th, which can be 8 years apart (2096,
// 2104); anything not found within this many years never fires.
const searchYears = 12

// DefaultTimezone is Aurora's default -cron_timezone.
const DefaultTimezone = "GMT"

// LoadLocation returns the location for a -cron_timezone value: "" and
// "GMT" are GMT (a zero-offset zone named GMT, needing no time zone
// database), "UTC" is time.UTC, anything else an IANA name such as
// "America/New_York" loaded with time.LoadLocation (from the system's
// database, or the one embedded by importing time/tzdata).
func LoadLocation(name string) (*time.Location, error) {
	switch name {
	case "", "GMT":
		return gmt, nil
	case "UTC":
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("cron timezone %q: %v", name, err)
	}
	return loc, nil
}

var gmt = time.FixedZone("GMT", 0)

// civil is a wall-clock minute.
type civil struct{ y, mo, d, h, mi int }

func daysIn(y, mo int) int {
	return time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// normalize carries overflowing fields into the next larger ones.
func (c *civil) normalize() {
	if c.mi > 59 {
		c.mi = 0
		c.h++
	}
	if c.h > 23 {
		c.h = 0
		c.d++
	}
	if c.d > daysIn(c.y, c.mo) {
		c.d = 1
		c.mo++
	}
	if c.mo > 12 {
		c.mo = 1
		c.y++
	}
}

// nextBit is the smallest value >= from in set, or -1.
func nextBit(set uint64, from int) int {
	if from > 63 {
		return -1
	}
	m := set >> from
	if m == 0 {
		return -1
	}
	return from + bits.TrailingZeros64(m)
}

func (s Schedule) dayMatches(c civil) bool {
	if s.set[DayOfMonth]&(1<<c.d) == 0 {
		return false
	}
	wd := time.Date(c.y, time.Month(c.mo), c.d, 0, 0, 0, 0, time.UTC).Weekday()
	return s.set[DayOfWeek]&(1<<wd) != 0
}

// advance moves c to the first matching wall-clock minute at or after c,
// giving up (false) after year limit.
func (s Schedule) advance(c *civil, limit int) bool {
	for {
		c.normalize()
		if c.y > limit {
			return false
		}
		if mo := nextBit(s.set[Month], c.mo); mo != c.mo {
			if mo < 0 {
				c.y, c.mo = c.y+1, 1
			} else {
				c.mo = mo
			}
			c.d, c.h, c.mi = 1, 0, 0
			continue
		}
		if !s.dayMatches(*c) {
			c.d, c.h, c.mi = c.d+1, 0, 0
			continue
		}
		if h := nextBit(s.set[Hour], c.h); h != c.h {
			if h < 0 {
				c.d, c.h = c.d+1, 0
			} else {
				c.h = h
			}
			c.mi = 0
			continue
		}
		if mi := nextBit(s.set[Minute], c.mi); mi != c.mi {
			if mi < 0 {
				c.h, c.mi = c.h+1, 0
			} else {
				c.mi = mi
			}
			continue
		}
		return true
	}
}

// firstInstant is the earliest instant whose wall clock in loc is c, or
// false if c does not exist in loc (it falls in a spring-forward gap).
func firstInstant(c civil, loc *time.Location) (time.Time, bool) {
	// An instant t shows wall clock c when t = u - offset(t). Offsets are
	// well within a day either way, so every such t lies in [u-26h, u+26h]:
	// walk the zone's periods over that window, earliest first, and take
	// the first period that contains its solution.
	u := time.Date(c.y, time.Month(c.mo), c.d, c.h, c.mi, 0, 0, time.UTC).Unix()
	const window = 26 * 3600
	t := time.Unix(u-window, 0).In(loc)
	for range 64 {
		_, off := t.Zone()
		start, end := t.ZoneBounds()
		x := u - int64(off)
		if (start.IsZero() || x >= start.Unix()) && (end.IsZero() || x < end.Unix()) {
			return time.Unix(x, 0).In(loc), true
		}
		if end.IsZero() || end.Unix() > u+window {
			break
		}
		t = end.In(loc)
	}
	return time.Time{}, false
}

// Next is the first firing of s strictly after after, in loc (GMT when loc
// is nil), or the zero time if s never fires (see searchYears). Firings are
// the wall-clock minutes of loc that match s, in wall-clock order, each at
// the first instant that shows it; minutes that do not exist (skipped by a
// spring-forward change) do not fire. See the package documentation for
// what that means around daylight saving time changes.
func (s Schedule) Next(after time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = gmt
	}
	w := after.In(loc)
	y, mo, d := w.Date()
	c := civil{y, int(mo), d, w.Hour(), w.Minute() + 1}
	limit := y + searchYears
	for s.advance(&c, limit) {
		if t, ok := firstInstant(c, loc); ok && t.After(after) {
			return t
		}
		c.mi++
	}
	return time.Time{}
}

// Matches reports whether s fires at t, a firing as Next would return it:
// a whole minute whose wall clock in loc (GMT when nil) matches s and is the
// first instant to show that wall clock.
func (s Schedule) Matches(t time.Time, loc *time.Location) bool {
	if loc == nil {
		loc = gmt
	}
	return s.Next(t.Add(-time.Nanosecond), loc).Equal(t)
}
