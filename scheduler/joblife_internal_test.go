package scheduler

import (
	"path/filepath"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/storage"
)

// Versions that stored the configuration of every job kept it after the
// job's tasks had ended, so the job could not be created again. Opened on
// such a store, the scheduler keeps only the cron jobs' templates (a job
// that is not a cron job is read from its tasks) and removes the others
// from the store.
func TestStoredNonCronJobsAreDropped(t *testing.T) {
	e := newKnobEnv(t, nil)
	e.s.Close()
	dead, cron := knobJob("dead", 2), knobJob("nightly", 1)
	cron.CronSchedule, cron.TaskConfig.IsService = "0 0 * * *", false
	st, err := storage.Open(filepath.Join(e.cfg.DataDir, "scheduler.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(w *storage.Writer) error {
		if err := w.SaveJob(dead); err != nil {
			return err
		}
		return w.SaveJob(cron)
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	e.open()
	if got := e.jobNames(); got != "[nightly]" {
		t.Fatalf("jobs %s, want [nightly]", got)
	}
	e.create("dead", 1)
	if got := e.jobNames(); got != "[dead nightly]" {
		t.Fatalf("jobs after createJob %s", got)
	}
	e.s.mu.Lock()
	snap, err := e.s.store.Load()
	e.s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Jobs) != 1 || snap.Jobs[0].Key != cron.Key {
		t.Fatalf("stored jobs %+v, want only %s", snap.Jobs, cron.Key)
	}
}
