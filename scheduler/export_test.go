package scheduler

import "context"

// Cron and SLA drain hooks for the tests outside the package, which drive
// the scheduler's clock.

// RunCronNow fires the cron jobs due at the scheduler's clock, as the cron
// loop would, and returns once they have fired (after any tick in
// progress; a KILL_EXISTING launch still waits for its kills in the
// background).
func (s *Scheduler) RunCronNow() {
	s.mu.Lock()
	ctx := s.cron.runCtx
	s.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	s.cronTick(ctx)
}

// RunSlaDrainNow runs one SLA drain pass, coordinators included, as the
// drain loop would, after any pass in progress.
func (s *Scheduler) RunSlaDrainNow() { s.slaDrainPass(context.Background()) }

// RunUpdatesNow evaluates the rolling updates once, as the update loop
// would.
func (s *Scheduler) RunUpdatesNow() { s.evaluateUpdates(context.Background()) }
