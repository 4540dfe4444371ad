package cron

import (
	"sort"
	"sync"
	"time"
)

// Firing is a run of a cron job that is due.
type Firing struct {
	Key string
	// At is the scheduled instant the run stands for: the latest firing of
	// the job's schedule at or before the time Due was asked about (the slot
	// itself when the loop is on time; when it woke late over several slots,
	// they are folded into this one run). Persist it as the job's last-fired
	// time and hand it back to Set after a restart.
	At time.Time
}

type entry struct {
	s    Schedule
	next time.Time // next firing; zero when the schedule never fires
}

// Trigger tells the cron loop which jobs are due. It is safe for concurrent
// use. A job fires at most once per DueAt call, and firings are computed from
// the schedule alone, so a late wake-up neither drifts the schedule nor
// causes a burst of catch-up runs.
type Trigger struct {
	loc *time.Location
	now func() time.Time

	mu   sync.Mutex
	jobs map[string]*entry
}

// NewTrigger returns a Trigger for schedules in loc (GMT when nil) reading
// the time from now (time.Now when nil).
func NewTrigger(loc *time.Location, now func() time.Time) *Trigger {
	if loc == nil {
		loc = gmt
	}
	if now == nil {
		now = time.Now
	}
	return &Trigger{loc: loc, now: now, jobs: map[string]*entry{}}
}

// Location is the time zone the Trigger reads schedules in.
func (t *Trigger) Location() *time.Location { return t.loc }

// Set schedules the job key with s, replacing any schedule it had
// (scheduleCronJob, replaceCronTemplate, or loading the cron jobs after a
// restart), and returns its next firing (zero if s never fires).
//
// lastFired is the job's last Firing.At as persisted, or zero. The job's
// first firing is the first slot after both lastFired and now: slots that
// passed while the scheduler was down are not caught up (Aurora keeps no
// record of them across failover), and a slot that was already fired is not
// fired again even if this clock is behind the one that fired it.
func (t *Trigger) Set(key string, s Schedule, lastFired time.Time) time.Time {
	base := t.now()
	if lastFired.After(base) {
		base = lastFired
	}
	next := s.Next(base, t.loc)
	t.mu.Lock()
	t.jobs[key] = &entry{s: s, next: next}
	t.mu.Unlock()
	// Not the entry's next: once published, DueAt may move it on.
	return next
}

// Remove deschedules the job key (descheduleCronJob), reporting whether it
// was scheduled.
func (t *Trigger) Remove(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.jobs[key]
	delete(t.jobs, key)
	return ok
}

// NextRun is the next firing of the job key (for getJobSummary's
// nextCronRunMs); false if it is not scheduled or never fires.
func (t *Trigger) NextRun(key string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.jobs[key]
	if e == nil || e.next.IsZero() {
		return time.Time{}, false
	}
	return e.next, true
}

// Wake is the earliest next firing of all the jobs: the loop sleeps until
// then (or until a job is Set), then calls Due. False when no job will fire.
func (t *Trigger) Wake() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, e := range t.jobs {
		if !e.next.IsZero() && (first.IsZero() || e.next.Before(first)) {
			first = e.next
		}
	}
	return first, !first.IsZero()
}

// Due is DueAt at the Trigger's clock's time.
func (t *Trigger) Due() []Firing { return t.DueAt(t.now()) }

// DueAt returns the jobs due at now, ordered by At then Key, and moves each
// of them on to its first slot after now. The caller runs each (see Decide)
// and persists its At.
func (t *Trigger) DueAt(now time.Time) []Firing {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Firing
	for key, e := range t.jobs {
		if e.next.IsZero() || e.next.After(now) {
			continue
		}
		at := latest(e.s, e.next, now, t.loc)
		out = append(out, Firing{Key: key, At: at})
		e.next = e.s.Next(at, t.loc)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// latest is the last firing of s at or before now, given first, a firing at
// or before now. It looks back from now over a doubling window rather than
// stepping from first, so a loop that slept for months over a schedule that
// fires every minute costs a few dozen steps, not a few hundred thousand.
func latest(s Schedule, first, now time.Time, loc *time.Location) time.Time {
	at := first
	// A schedule that fires at all fires within any 8 years, so the window
	// stops growing long before the Duration could overflow.
	for d := time.Minute; d < 100*365*24*time.Hour; d *= 2 {
		probe := now.Add(-d)
		if !probe.After(first) {
			break
		}
		if n := s.Next(probe, loc); !n.IsZero() && !n.After(now) {
			at = n
			break
		}
	}
	for {
		n := s.Next(at, loc)
		if n.IsZero() || n.After(now) {
			return at
		}
		at = n
	}
}
