package agent

// CollectGarbage runs one round of sandbox garbage collection now, at the
// disk usage Config.DiskUsage reports, as the agent does every
// DiskWatchInterval.
func (a *Agent) CollectGarbage() { a.collectSandboxes(a.cfg.DiskUsage(a.cfg.WorkDir)) }
