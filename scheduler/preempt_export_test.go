package scheduler

// PreemptorVars are the preemptor's counters as /vars shows them, for the
// tests outside the package.
func (s *Scheduler) PreemptorVars() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := map[string]any{}
	s.preemptorVars(v)
	return v
}
