package agent

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Sandbox garbage collection follows Mesos: the run directory of an
// executor that has terminated is kept for GCDelay, less when the disk
// fills up. Every DiskWatchInterval the agent measures how full the work
// dir's file system is (usage, 0..1) and removes the terminated runs older
// than
//
//	GCDelay × max(0, 1 − GCDiskHeadroom − usage)
//
// so that at usage ≥ 1 − headroom everything terminated goes at once. A
// run's age is counted from its executor's exit, which the agent stamps as
// the directory's modification time (it survives agent restarts).

// maxCompletedExecutors bounds the terminated executors a framework keeps
// in /state, as Mesos' --max_completed_executors_per_framework.
const maxCompletedExecutors = 150

func (a *Agent) gcLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.DiskWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.collectSandboxes(a.cfg.DiskUsage(a.cfg.WorkDir))
		}
	}
}

// diskUsage is the used fraction of the file system holding dir.
func diskUsage(dir string) float64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil || st.Blocks == 0 {
		return 0
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks)
}

// collectSandboxes removes terminated runs past their allowed age at the
// given disk usage, and the checkpoint directories that go with them.
func (a *Agent) collectSandboxes(usage float64) {
	maxAge := time.Duration(float64(a.cfg.GCDelay) * max(0, 1-a.cfg.GCDiskHeadroom-usage))
	now := a.cfg.Now()
	live := map[string]bool{}
	a.mu.Lock()
	for _, fs := range a.frameworks {
		for _, ex := range fs.executors {
			live[ex.directory] = true
		}
	}
	a.mu.Unlock()
	runs, _ := filepath.Glob(filepath.Join(a.cfg.WorkDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*"))
	for _, run := range runs {
		fi, err := os.Lstat(run)
		if err != nil || !fi.IsDir() || live[run] || now.Sub(fi.ModTime()) < maxAge {
			continue
		}
		// The latest link goes first, so that nothing reaches the run
		// through it while it is being removed.
		runsDir := filepath.Dir(run)
		latest := filepath.Join(runsDir, "latest")
		if target, err := os.Readlink(latest); err == nil && target == filepath.Base(run) {
			os.Remove(latest)
		}
		if err := os.RemoveAll(run); err != nil {
			a.cfg.Logger.Warn("removing sandbox", "dir", run, "err", err)
			continue
		}
		a.cfg.Logger.Info("removed sandbox", "dir", run, "age", now.Sub(fi.ModTime()).Round(time.Second), "disk_usage", usage)
		// The executor's meta dir (its run checkpoints) goes with the sandbox.
		rel, _ := filepath.Rel(filepath.Join(a.cfg.WorkDir, "slaves"), run)
		os.RemoveAll(filepath.Join(a.metaDir(), rel))
		removeEmptyParents(runsDir, filepath.Join(a.cfg.WorkDir, "slaves"))
		removeEmptyParents(filepath.Dir(filepath.Join(a.metaDir(), rel)), a.metaDir())
	}
}

// removeEmptyParents removes dir and its parents up to (not including)
// stop while they are empty.
func removeEmptyParents(dir, stop string) {
	for dir != stop && len(dir) > len(stop) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}
