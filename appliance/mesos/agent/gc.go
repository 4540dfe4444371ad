package agent

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/sandboxgc"
)

// Sandbox garbage collection follows Mesos: the run directory of an
// executor that has terminated is kept for GCDelay, less when the disk
// fills up. Every DiskWatchInterval the agent measures how full the work
// dir's file system is (usage, 0..1) and removes the terminated runs older
// than sandboxgc.MaxAge (the policy, which the appliance's configuration
// checks too). A run's age is counted from its executor's exit, which the
// agent stamps as the directory's modification time (it survives agent
// restarts).
//
// With a run go its checkpoints in the meta dir, the executor's `latest`
// link when it names that run, and then the executor and framework
// directories that are left empty: what Mesos removes when it collects an
// executor's last run. The run is first renamed into the agent's trash
// (meta/gc, never served), so readers (the /files API, the observer) see
// it whole or not at all, never half removed. As in Mesos, the executor
// stays in /state's completed_executors (a bounded history); its directory
// then no longer exists.
//
// An agent collects beneath its own agent id, and beneath the ids no agent
// sharing the work dir claims (an earlier incarnation's, whose executors
// are gone), never beneath another live agent's (`up --agents N`).

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

// trashDir is where runs are moved to be removed: the agent's own, beneath
// the meta dir (0700, never served).
func (a *Agent) trashDir(id string) string {
	return filepath.Join(a.cfg.WorkDir, "meta", "gc", id)
}

// collectSandboxes removes terminated runs past their allowed age at the
// given disk usage, and what goes with them (see above).
func (a *Agent) collectSandboxes(usage float64) {
	maxAge := sandboxgc.MaxAge(a.cfg.GCDelay, a.cfg.GCDiskHeadroom, usage)
	now := a.cfg.Now()
	a.mu.Lock()
	id := a.id
	a.mu.Unlock()
	if id == "" {
		return
	}
	trash := a.trashDir(id)
	a.emptyTrash(trash) // what a removal cut short (an agent killed) left
	slaves := filepath.Join(a.cfg.WorkDir, "slaves")
	// The runs are listed before the agent ids that others claim and the
	// executors that live are read: a run is made only after its agent
	// claimed its id, and registered with its executor (under a.mu) as it
	// is made, so neither a new agent's nor a new executor's run is taken
	// for dead.
	var runs []string
	for _, ag := range subdirNames(slaves) {
		found, _ := filepath.Glob(filepath.Join(slaves, ag, "frameworks", "*", "executors", "*", "runs", "*"))
		runs = append(runs, found...)
	}
	others := a.claimedByOthers(id)
	a.mu.Lock()
	removed := a.unlinkDeadRunsLocked(runs, others, now, maxAge, trash, usage)
	a.mu.Unlock()
	if removed > 0 {
		// The files go without the lock: executors may start meanwhile.
		a.emptyTrash(trash)
	}
}

// unlinkDeadRunsLocked takes the runs that are not live, not another
// agent's and at least maxAge old out of the tree; it returns how many.
func (a *Agent) unlinkDeadRunsLocked(runs []string, others map[string]bool, now time.Time, maxAge time.Duration, trash string, usage float64) int {
	live := map[string]bool{}
	for _, fs := range a.frameworks {
		for _, ex := range fs.executors {
			live[ex.directory] = true
		}
	}
	slaves := filepath.Join(a.cfg.WorkDir, "slaves")
	n := 0
	for _, run := range runs {
		rel, err := filepath.Rel(slaves, run)
		if err != nil || others[firstElem(rel)] {
			continue
		}
		fi, err := os.Lstat(run)
		if err != nil || !fi.IsDir() || live[run] || now.Sub(fi.ModTime()) < maxAge {
			continue
		}
		if err := a.unlinkRunLocked(run, rel, trash); err != nil {
			a.cfg.Logger.Warn("removing sandbox", "dir", run, "err", err)
			continue
		}
		a.cfg.Logger.Info("removing sandbox", "dir", run, "age", now.Sub(fi.ModTime()).Round(time.Second), "disk_usage", usage)
		n++
	}
	return n
}

// unlinkRunLocked takes the run at rel (beneath slaves/) out of the tree:
// its latest link (first, so that nothing reaches the run through it), the
// run itself into trash, its checkpoints, and the directories this leaves
// empty. Under a.mu, so that no executor is being given a directory here
// meanwhile.
func (a *Agent) unlinkRunLocked(run, rel, trash string) error {
	runsDir := filepath.Dir(run)
	latest := filepath.Join(runsDir, "latest")
	if target, err := os.Readlink(latest); err == nil && target == filepath.Base(run) {
		os.Remove(latest)
	}
	if err := os.MkdirAll(trash, 0o700); err != nil {
		return err
	}
	bin, err := os.MkdirTemp(trash, "run-")
	if err != nil {
		return err
	}
	if err := os.Rename(run, filepath.Join(bin, "run")); err != nil {
		// Not on the trash's file system: remove it in place.
		os.Remove(bin)
		if err := os.RemoveAll(run); err != nil {
			return err
		}
	}
	meta := filepath.Join(a.metaDir(), rel)
	os.RemoveAll(meta)
	slaves := filepath.Join(a.cfg.WorkDir, "slaves")
	removeEmptyParents(runsDir, slaves)
	removeEmptyParents(filepath.Dir(meta), a.metaDir())
	return nil
}

// emptyTrash removes what is in the trash directory.
func (a *Agent) emptyTrash(trash string) {
	for _, name := range subdirNames(trash) {
		if err := os.RemoveAll(filepath.Join(trash, name)); err != nil {
			a.cfg.Logger.Warn("removing sandbox", "dir", filepath.Join(trash, name), "err", err)
		}
	}
}

// claimedByOthers is the set of agent ids that other agents sharing the
// work dir hold (their meta/slaves/latest* links).
func (a *Agent) claimedByOthers(own string) map[string]bool {
	out := map[string]bool{}
	links, _ := filepath.Glob(filepath.Join(a.metaDir(), "latest*"))
	for _, l := range links {
		if filepath.Base(l) == a.idLink() {
			continue
		}
		if target, err := os.Readlink(l); err == nil && filepath.Base(target) != own {
			out[filepath.Base(target)] = true
		}
	}
	return out
}

// subdirNames lists the directories (not symlinks) in dir.
func subdirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// firstElem is the first element of a relative path.
func firstElem(rel string) string {
	for i := 0; i < len(rel); i++ {
		if os.IsPathSeparator(rel[i]) {
			return rel[:i]
		}
	}
	return rel
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
