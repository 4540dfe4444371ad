// Package sandboxgc is the agent's sandbox garbage collection policy, as
// Mesos': its settings (--gc_delay, --gc_disk_headroom,
// --disk_watch_interval) with their defaults and ranges, and the age past
// which a terminated executor's run is removed at a given disk usage. It
// does no I/O: the agent measures the disk every DiskWatchInterval and
// removes the runs older than MaxAge (appliance/mesos/agent/gc.go); the
// appliance's configuration checks the same settings before starting
// anything.
package sandboxgc

import (
	"fmt"
	"time"
)

// Defaults of the settings, Mesos' own.
const (
	DefaultDelay             = 7 * 24 * time.Hour
	DefaultDiskHeadroom      = 0.1
	DefaultDiskWatchInterval = time.Minute
)

// SettingError is a setting out of its range. Setting is the name of
// Mesos' flag, which is also the appliance config key (gc_delay,
// gc_disk_headroom, disk_watch_interval).
type SettingError struct {
	Setting string
	Msg     string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Msg }

// Check checks the settings: both durations positive, the headroom a
// fraction of the disk between 0 and 1 (as Mesos requires).
func Check(delay time.Duration, headroom float64, interval time.Duration) error {
	switch {
	case delay <= 0:
		return &SettingError{"gc_delay", fmt.Sprintf("%s must be positive", delay)}
	case !(headroom >= 0 && headroom <= 1): // NaN too
		return &SettingError{"gc_disk_headroom", fmt.Sprintf("%g must be between 0 and 1 (a fraction of the disk)", headroom)}
	case interval <= 0:
		return &SettingError{"disk_watch_interval", fmt.Sprintf("%s must be positive", interval)}
	}
	return nil
}

// MaxAge is how long a terminated run is kept when the work dir's file
// system is usage (0..1) full:
//
//	delay × max(0, 1 − headroom − usage)
//
// so that at usage ≥ 1 − headroom everything terminated goes at once, and
// on an empty disk a run goes at (1 − headroom) × delay, as in Mesos, whose
// disk check prunes what is due within the next headroom share of the
// delay.
func MaxAge(delay time.Duration, headroom, usage float64) time.Duration {
	return time.Duration(float64(delay) * max(0, 1-headroom-usage))
}
