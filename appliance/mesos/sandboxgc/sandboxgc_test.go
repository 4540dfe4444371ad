package sandboxgc

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestMaxAge(t *testing.T) {
	const week = 7 * 24 * time.Hour
	for _, c := range []struct {
		headroom, usage float64
		want            time.Duration
	}{
		{0.1, 0, time.Duration(0.9 * float64(week))}, // an empty disk: (1 − headroom) × delay
		{0.1, 0.5, time.Duration(0.4 * float64(week))},
		{0.1, 0.9, 0}, // at 1 − headroom everything terminated goes
		{0.1, 0.95, 0},
		{0, 0, week}, // no headroom: the whole delay on an empty disk
		{1, 0, 0},
	} {
		if got := MaxAge(week, c.headroom, c.usage); got.Round(time.Second) != c.want.Round(time.Second) {
			t.Errorf("MaxAge(week, %g, %g) = %s, want %s", c.headroom, c.usage, got, c.want)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(DefaultDelay, DefaultDiskHeadroom, DefaultDiskWatchInterval); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, c := range []struct {
		delay    time.Duration
		headroom float64
		interval time.Duration
		setting  string
	}{
		{0, 0.1, time.Minute, "gc_delay"},
		{time.Hour, -0.1, time.Minute, "gc_disk_headroom"},
		{time.Hour, 1.5, time.Minute, "gc_disk_headroom"},
		{time.Hour, math.NaN(), time.Minute, "gc_disk_headroom"},
		{time.Hour, 0.1, -time.Second, "disk_watch_interval"},
	} {
		var se *SettingError
		if err := Check(c.delay, c.headroom, c.interval); !errors.As(err, &se) || se.Setting != c.setting {
			t.Errorf("Check(%s, %g, %s) = %v, want a %s error", c.delay, c.headroom, c.interval, err, c.setting)
		}
	}
}
