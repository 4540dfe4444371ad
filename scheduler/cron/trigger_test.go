package cron

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

func gmtTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, gmt)
	if err != nil {
		panic(err)
	}
	return t
}

func show(fs []Firing) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key+"@"+f.At.Format("15:04"))
	}
	return strings.Join(out, " ")
}

func TestTriggerFiresOnScheduleWithoutDrift(t *testing.T) {
	clock := &fakeClock{now: gmtTime("2024-01-01 09:58:30")}
	tr := NewTrigger(nil, clock.Now)
	if next := tr.Set("www/prod/every5", MustParse("*/5 * * * *"), time.Time{}); !next.Equal(gmtTime("2024-01-01 10:00:00")) {
		t.Fatalf("first firing %v", next)
	}
	tr.Set("www/prod/hourly", MustParse("0 * * * *"), time.Time{})
	if got := show(tr.Due()); got != "" {
		t.Fatalf("due before the first slot: %s", got)
	}
	// The loop sleeps until Wake, but wakes a little late each time: the
	// lateness never accumulates, each firing is on its slot.
	var log []string
	for range 8 {
		wake, ok := tr.Wake()
		if !ok {
			t.Fatal("Wake: nothing scheduled")
		}
		clock.Set(wake.Add(1500 * time.Millisecond))
		log = append(log, show(tr.Due()))
	}
	want := []string{
		"www/prod/every5@10:00 www/prod/hourly@10:00",
		"www/prod/every5@10:05", "www/prod/every5@10:10", "www/prod/every5@10:15",
		"www/prod/every5@10:20", "www/prod/every5@10:25", "www/prod/every5@10:30", "www/prod/every5@10:35",
	}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Errorf("firings:\n got: %q\nwant: %q", log, want)
	}
	// Asking again at the same time fires nothing.
	if got := show(tr.Due()); got != "" {
		t.Errorf("second Due at the same time fired %s", got)
	}
	if next, ok := tr.NextRun("www/prod/hourly"); !ok || !next.Equal(gmtTime("2024-01-01 11:00:00")) {
		t.Errorf("NextRun(hourly) = %v, %v", next, ok)
	}
}

func TestTriggerLateWakeFiresOnce(t *testing.T) {
	clock := &fakeClock{now: gmtTime("2024-01-01 10:00:30")}
	tr := NewTrigger(nil, clock.Now)
	tr.Set("a", MustParse("* * * * *"), time.Time{})
	tr.Set("b", MustParse("0 11 * * *"), time.Time{})
	// The loop stalls for 90 minutes: a fires once, for its latest slot,
	// and b (whose 11:00 slot passed) once too.
	clock.Set(gmtTime("2024-01-01 11:30:10"))
	if got := show(tr.Due()); got != "b@11:00 a@11:30" {
		t.Errorf("after a stall: %s", got)
	}
	if got := show(tr.Due()); got != "" {
		t.Errorf("fired again: %s", got)
	}
	clock.Set(gmtTime("2024-01-01 11:31:00"))
	if got := show(tr.Due()); got != "a@11:31" {
		t.Errorf("back on schedule: %s", got)
	}
}

// A machine asleep for months over a schedule firing every minute: one
// firing, for the latest slot, found quickly.
func TestTriggerLongSleep(t *testing.T) {
	clock := &fakeClock{now: gmtTime("2024-01-01 00:00:00")}
	tr := NewTrigger(nil, clock.Now)
	tr.Set("a", MustParse("* * * * *"), time.Time{})
	tr.Set("b", MustParse("0-59 0 1 * *"), time.Time{}) // dense then sparse
	clock.Set(gmtTime("2024-07-15 12:34:56"))
	start := time.Now()
	got := tr.Due()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Due took %v", took)
	}
	if s := show(got); s != "b@00:59 a@12:34" || got[0].At.Format("01-02") != "07-01" {
		t.Errorf("after months: %s (%v)", s, got)
	}
}

func TestTriggerRestartDoesNotDoubleFire(t *testing.T) {
	s := MustParse("0 * * * *")
	// The old leader fired 10:00 and persisted it.
	clock := &fakeClock{now: gmtTime("2024-01-01 09:30:00")}
	tr := NewTrigger(nil, clock.Now)
	tr.Set("job", s, gmtTime("2024-01-01 09:00:00"))
	clock.Set(gmtTime("2024-01-01 10:00:00"))
	fired := tr.Due()
	if show(fired) != "job@10:00" {
		t.Fatalf("old leader: %s", show(fired))
	}
	last := fired[0].At
	// The new leader's clock is 20 s behind: without the persisted time it
	// would fire 10:00 again.
	clock2 := &fakeClock{now: gmtTime("2024-01-01 09:59:50")}
	tr2 := NewTrigger(nil, clock2.Now)
	if next := tr2.Set("job", s, last); !next.Equal(gmtTime("2024-01-01 11:00:00")) {
		t.Errorf("after restart the next firing is %v, want 11:00", next)
	}
	clock2.Set(gmtTime("2024-01-01 10:00:05"))
	if got := show(tr2.Due()); got != "" {
		t.Errorf("double firing after restart: %s", got)
	}
	// Without it, the same clock would fire again: the case the persisted
	// time is for.
	tr3 := NewTrigger(nil, (&fakeClock{now: gmtTime("2024-01-01 09:59:50")}).Now)
	tr3.Set("job", s, time.Time{})
	if got := show(tr3.DueAt(gmtTime("2024-01-01 10:00:05"))); got != "job@10:00" {
		t.Errorf("control: %s", got)
	}
}

func TestTriggerRestartDoesNotCatchUp(t *testing.T) {
	// Down from 09:55 to 10:20: the 10:00, 10:05 ... 10:20 slots are gone
	// (Aurora: no catch-up across failover); next is 10:25.
	clock := &fakeClock{now: gmtTime("2024-01-01 10:20:30")}
	tr := NewTrigger(nil, clock.Now)
	if next := tr.Set("job", MustParse("*/5 * * * *"), gmtTime("2024-01-01 09:55:00")); !next.Equal(gmtTime("2024-01-01 10:25:00")) {
		t.Errorf("next = %v, want 10:25", next)
	}
	if got := show(tr.Due()); got != "" {
		t.Errorf("caught up: %s", got)
	}
	clock.Set(gmtTime("2024-01-01 10:25:00"))
	if got := show(tr.Due()); got != "job@10:25" {
		t.Errorf("at 10:25: %s", got)
	}
}

func TestTriggerSetReplaceRemove(t *testing.T) {
	clock := &fakeClock{now: gmtTime("2024-01-01 10:00:30")}
	tr := NewTrigger(nil, clock.Now)
	tr.Set("job", MustParse("0 12 * * *"), time.Time{})
	if wake, ok := tr.Wake(); !ok || !wake.Equal(gmtTime("2024-01-01 12:00:00")) {
		t.Errorf("Wake = %v, %v", wake, ok)
	}
	// replaceCronTemplate: the new schedule applies from now.
	tr.Set("job", MustParse("*/10 * * * *"), time.Time{})
	if wake, _ := tr.Wake(); !wake.Equal(gmtTime("2024-01-01 10:10:00")) {
		t.Errorf("after replace, Wake = %v", wake)
	}
	// A schedule that never fires is held but never due.
	tr.Set("never", MustParse("0 0 31 2 *"), time.Time{})
	if _, ok := tr.NextRun("never"); ok {
		t.Error("NextRun of a schedule that never fires")
	}
	if !tr.Remove("job") || tr.Remove("job") {
		t.Error("Remove")
	}
	if _, ok := tr.Wake(); ok {
		t.Error("Wake with nothing that fires")
	}
	clock.Advance(24 * time.Hour)
	if got := tr.Due(); len(got) != 0 {
		t.Errorf("due: %v", got)
	}
	if _, ok := tr.NextRun("job"); ok {
		t.Error("NextRun of a removed job")
	}
}

func TestTriggerTimezone(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	clock := &fakeClock{now: time.Date(2024, 3, 9, 0, 0, 0, 0, ny)}
	tr := NewTrigger(ny, clock.Now)
	if tr.Location() != ny {
		t.Fatal("Location")
	}
	tr.Set("job", MustParse("30 2 * * *"), time.Time{})
	var got []string
	for range 3 {
		wake, _ := tr.Wake()
		clock.Set(wake)
		for _, f := range tr.Due() {
			got = append(got, f.At.Format(stamp))
		}
	}
	// 02:30 does not exist on the 10th.
	want := fmt.Sprint([]string{"2024-03-09 02:30 EST", "2024-03-11 02:30 EDT", "2024-03-12 02:30 EDT"})
	if fmt.Sprint(got) != want {
		t.Errorf("firings %v, want %v", got, want)
	}
	if NewTrigger(nil, nil).Location().String() != "GMT" {
		t.Error("default location")
	}
}

// Concurrent Set, Wake, NextRun, DueAt and Remove (the API goroutines and
// the cron loop): no slot of a job is handed out twice, every job fires,
// and once all are removed nothing is scheduled.
func TestTriggerConcurrentUse(t *testing.T) {
	clock := &fakeClock{now: gmtTime("2024-01-01 00:00:00")}
	tr := NewTrigger(nil, clock.Now)
	var mu sync.Mutex
	fired := map[Firing]int{}
	perKey := map[string]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			key := fmt.Sprint("job", i)
			for range 50 {
				tr.Set(key, MustParse("* * * * *"), time.Time{})
				tr.Wake()
				if _, ok := tr.NextRun(key); !ok {
					t.Errorf("%s: no next run right after Set", key)
				}
				fs := tr.DueAt(clock.Advance(time.Minute))
				mu.Lock()
				for _, f := range fs {
					fired[f]++
					perKey[f.Key]++
				}
				mu.Unlock()
			}
			tr.Remove(key)
		})
	}
	wg.Wait()
	for f, n := range fired {
		if n > 1 {
			t.Errorf("%s at %v handed out %d times", f.Key, f.At, n)
		}
	}
	for i := range 8 {
		if key := fmt.Sprint("job", i); perKey[key] == 0 {
			t.Errorf("%s never fired", key)
		}
		if _, ok := tr.NextRun(fmt.Sprint("job", i)); ok {
			t.Errorf("job%d still scheduled after Remove", i)
		}
	}
	if _, ok := tr.Wake(); ok {
		t.Error("Wake reports a firing with every job removed")
	}
}
