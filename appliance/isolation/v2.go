package isolation

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// v2Backend keeps containers in the unified hierarchy of a cgroup v2 host.
type v2Backend struct {
	root  string // relative, e.g. "aurorabox/dev"
	mount string // "/sys/fs/cgroup"
	ctrls []string
	swap  bool // memory.swap.max exists (swap accounting is on)
}

// v2Controllers are the controllers containers use, when the host offers them.
var v2Controllers = []string{"cpu", "memory", "pids"}

func newV2(root, mount string, log *slog.Logger) (*v2Backend, error) {
	b := &v2Backend{root: root, mount: mount}
	avail, err := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, c := range v2Controllers {
		if slices.Contains(strings.Fields(string(avail)), c) {
			b.ctrls = append(b.ctrls, c)
		} else {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		log.Warn("cgroup v2 controllers unavailable: their limits are not enforced", "missing", missing)
	}
	// Creating the root (which enables the controllers in its ancestors) and enabling them
	// for its children proves that cgroups are writable and delegable here. Enabling fails
	// with EBUSY when root's parent holds processes itself ("no internal processes"), as
	// when the agent runs at the top of a private cgroup namespace.
	if _, err := cgroup2.NewManager(mount, b.path(""), b.resources(Limits{})); err != nil {
		return nil, err
	}
	if len(b.ctrls) > 0 {
		ctl := "+" + strings.Join(b.ctrls, " +")
		if err := os.WriteFile(filepath.Join(b.dir(""), "cgroup.subtree_control"), []byte(ctl), 0); err != nil {
			return nil, fmt.Errorf("enable %s for %s: %w", ctl, b.dir(""), err)
		}
	}
	_, err = os.Stat(filepath.Join(b.dir(""), "memory.swap.max"))
	b.swap = err == nil
	return b, nil
}

// path is a container's cgroup path in the unified hierarchy ("" for the root).
func (b *v2Backend) path(id string) string {
	return "/" + filepath.Join(b.root, id)
}

func (b *v2Backend) dir(id string) string {
	return filepath.Join(b.mount, b.path(id))
}

func (b *v2Backend) has(ctrl string) bool { return slices.Contains(b.ctrls, ctrl) }

func (b *v2Backend) resources(l Limits) *cgroup2.Resources {
	r := &cgroup2.Resources{}
	if b.has("cpu") {
		r.CPU = &cgroup2.CPU{}
		if l.CPUs > 0 {
			weight, quota, period := cpuWeight(cpuShares(l.CPUs)), cfsQuota(l.CPUs), uint64(cfsPeriodUsec)
			r.CPU.Weight = &weight
			if !l.SharesOnly {
				r.CPU.Max = cgroup2.NewCPUMax(&quota, &period)
			}
		}
	}
	if b.has("memory") {
		r.Memory = &cgroup2.Memory{}
		if l.MemBytes > 0 {
			mem := l.MemBytes
			r.Memory.Max = &mem
			if b.swap {
				// No swap on top of memory.max, so the limit is hard on hosts with swap.
				var zero int64
				r.Memory.Swap = &zero
			}
		}
	}
	if b.has("pids") {
		r.Pids = &cgroup2.Pids{Max: l.Pids}
	}
	return r
}

func (b *v2Backend) create(id string, l Limits) (handle, error) {
	if _, err := os.Lstat(b.dir(id)); err == nil {
		return nil, fmt.Errorf("cgroup %s: %w", b.path(id), fs.ErrExist)
	}
	m, err := cgroup2.NewManager(b.mount, b.path(id), b.resources(l))
	if err != nil {
		return nil, err
	}
	return &v2Handle{b: b, path: b.dir(id), m: m}, nil
}

func (b *v2Backend) load(id string) (handle, error) {
	if _, err := os.Stat(filepath.Join(b.dir(id), "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", b.path(id), err)
	}
	m, err := cgroup2.Load(b.path(id), cgroup2.WithMountpoint(b.mount))
	if err != nil {
		return nil, err
	}
	return &v2Handle{b: b, path: b.dir(id), m: m}, nil
}

func (b *v2Backend) list() ([]string, error) {
	ids, err := listDirs(b.dir(""))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return ids, err
}

func (b *v2Backend) removeRoot() error {
	if _, err := os.Lstat(b.dir("")); err == nil {
		m, err := cgroup2.Load(b.path(""), cgroup2.WithMountpoint(b.mount))
		if err == nil {
			err = m.Delete()
		}
		if err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	removeEmptyParents(b.mount, b.root)
	return nil
}

type v2Handle struct {
	b    *v2Backend
	path string // absolute directory
	m    *cgroup2.Manager
}

func (h *v2Handle) add(pid int) error {
	return h.m.AddProc(uint64(pid))
}

func (h *v2Handle) procs() ([]int, error) {
	ps, err := h.m.Procs(true)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, int(p))
	}
	return pids, nil
}

func (h *v2Handle) usage() (Usage, error) {
	if _, err := os.Lstat(h.path); err != nil {
		return Usage{}, err
	}
	m, err := h.m.StatFiltered(cgroup2.StatPids | cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatMemoryEvents)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if m.CPU != nil {
		u.CPUUserSecs, u.CPUSystemSecs = float64(m.CPU.UserUsec)/1e6, float64(m.CPU.SystemUsec)/1e6
	}
	if m.Memory != nil {
		u.MemRSSBytes = int64(m.Memory.Anon)
		u.MemUsageBytes = int64(m.Memory.Usage)
		u.MemLimitBytes = limitOrZero(m.Memory.UsageLimit)
	}
	if m.MemoryEvents != nil {
		u.OOMKills = int(m.MemoryEvents.OomKill)
	}
	if h.b.has("pids") && m.Pids != nil {
		u.Pids = int64(m.Pids.Current)
	} else if pids, err := h.procs(); err == nil {
		u.Pids = int64(len(pids))
	}
	return u, nil
}

func (h *v2Handle) oomKilled() (bool, error) {
	ev, err := readKV(filepath.Join(h.path, "memory.events"))
	if os.IsNotExist(err) && !h.b.has("memory") {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ev["oom_kill"] > 0 || ev["oom_group_kill"] > 0, nil
}

func (h *v2Handle) signalAll(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		if _, err := os.Stat(filepath.Join(h.path, "cgroup.kill")); err == nil {
			// Kernel 5.14+: one write kills the whole cgroup, forks included. (Without
			// cgroup.kill, Manager.Kill would also wait(2) for the processes, stealing the
			// agent's exit statuses, so the fallback below is ours.)
			return h.m.Kill()
		}
	}
	var freeze, thaw func() error
	if _, err := os.Stat(filepath.Join(h.path, "cgroup.freeze")); err == nil {
		// Not Manager.Freeze: it waits without a bound for the freezer to settle.
		to := func(want string) func() error {
			return func() error {
				return setState(filepath.Join(h.path, "cgroup.freeze"), want, func() (bool, error) {
					ev, err := readKV(filepath.Join(h.path, "cgroup.events"))
					return err == nil && fmt.Sprint(ev["frozen"]) == want, err
				})
			}
		}
		freeze, thaw = to("1"), to("0")
	}
	return signalFrozen(freeze, thaw, h.procs, sig)
}

func (h *v2Handle) remove() error {
	if _, err := os.Lstat(h.path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return h.m.Delete()
}

func (h *v2Handle) dir() (string, bool) { return h.path, true }
