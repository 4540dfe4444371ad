package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// Shutdown joins everything: once Run and Serve have returned and Close
// has closed the store, no goroutine of the scheduler is left, after a
// job was created, ran and was killed (API handlers, the Mesos session,
// the loops, timers of the state machine and of the update and cron
// engines all ran).
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	e := start(t)
	e.mustOK("createJob", map[string]any{"description": jobConfig("leak", 2, true, 1, "sleep 600")})
	e.await("leak", "2 RUNNING", allRunning(2))
	e.mustOK("killTasks", map[string]any{"job": jobKey("leak"), "instances": []int{0}})
	e.await("leak", "1 KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	e.stop()
	e.stop = func() {}

	// Goroutines that were told to end may take a moment to be scheduled
	// out; what is left after a few seconds is a leak.
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left = schedulerGoroutines(); len(left) == 0 {
			return
		}
	}
	t.Fatalf("%d scheduler goroutines outlive shutdown:\n\n%s", len(left), strings.Join(left, "\n\n"))
}
