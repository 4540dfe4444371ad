package state

// JobExists reports whether a job exists, as in Aurora 0.11: a job exists
// while it has an active task (see Status.Active) or a cron schedule, and
// nothing else. statuses are the statuses of the job's stored tasks; the
// terminal ones are its history, which stays queryable but does not keep
// the job alive. So a job whose every task is killed, or whose batch tasks
// all FINISHED (or FAILED for good), no longer exists: its key may be
// created again, with a new configuration, and it is no longer listed
// (getJobs). A cron job exists from scheduleCronJob to descheduleCronJob,
// with or without tasks. Aurora stores no configuration for a job that is
// not a cron job; it reads it from the job's tasks.
func JobExists(cron bool, statuses ...Status) bool {
	if cron {
		return true
	}
	for _, s := range statuses {
		if s.Active() {
			return true
		}
	}
	return false
}
