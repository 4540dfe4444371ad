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

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Backend keeps containers in the cpu, cpuacct, memory, pids and freezer hierarchies of a
// cgroup v1 host (legacy, or hybrid where the v2 hierarchy has no controllers).
type v1Backend struct {
	root  string // relative, e.g. "aurorabox/dev"
	subs  []cgroup1.Subsystem
	memsw bool // memory.memsw.* exist (swap accounting is on)
}

type pather interface{ Path(string) string }

func newV1(root string, log *slog.Logger) (*v1Backend, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, fmt.Errorf("find cgroup v1 hierarchies: %w", err)
	}
	var mount string
	for _, s := range all {
		if p, ok := s.(pather); ok {
			mount = filepath.Dir(p.Path("/"))
			break
		}
	}
	if mount == "" {
		return nil, errors.New("no cgroup v1 hierarchy is mounted")
	}
	b := &v1Backend{root: root}
	var missing []string
	for _, s := range []cgroup1.Subsystem{
		cgroup1.NewCpu(mount),
		cgroup1.NewCpuacct(mount),
		cgroup1.NewMemory(mount, cgroup1.OptionalSwap()),
		cgroup1.NewPids(mount),
		cgroup1.NewFreezer(mount),
	} {
		if _, err := os.Lstat(s.(pather).Path("/")); err == nil {
			b.subs = append(b.subs, s)
		} else {
			missing = append(missing, string(s.Name()))
		}
	}
	if len(b.subs) == 0 {
		return nil, fmt.Errorf("none of the cpu, memory, pids and freezer hierarchies is mounted under %s", mount)
	}
	if len(missing) > 0 {
		log.Warn("cgroup v1 hierarchies missing: their limits are not enforced", "missing", missing)
	}
	// Creating the root proves that cgroups are writable here (root, not read-only).
	if _, err := cgroup1.New(cgroup1.StaticPath(b.path("")), &specs.LinuxResources{}, b.opts()...); err != nil {
		return nil, err
	}
	if m := b.sub(cgroup1.Memory); m != nil {
		_, err := os.Stat(filepath.Join(m.(pather).Path("/"), "memory.memsw.limit_in_bytes"))
		b.memsw = err == nil
	}
	return b, nil
}

func (b *v1Backend) opts() []cgroup1.InitOpts {
	return []cgroup1.InitOpts{cgroup1.WithHierarchy(func() ([]cgroup1.Subsystem, error) { return b.subs, nil })}
}

// path is a container's cgroup path relative to each hierarchy's mount ("" for the root).
func (b *v1Backend) path(id string) string {
	return "/" + filepath.Join(b.root, id)
}

func (b *v1Backend) sub(n cgroup1.Name) cgroup1.Subsystem {
	for _, s := range b.subs {
		if s.Name() == n {
			return s
		}
	}
	return nil
}

// dir is the directory of cgroup path p in hierarchy n, or "" when n is not in use.
func (b *v1Backend) dir(n cgroup1.Name, p string) string {
	s := b.sub(n)
	if s == nil {
		return ""
	}
	return s.(pather).Path(p)
}

func (b *v1Backend) create(id string, l Limits) (handle, error) {
	p := b.path(id)
	for _, s := range b.subs {
		if _, err := os.Lstat(s.(pather).Path(p)); err == nil {
			return nil, fmt.Errorf("cgroup %s: %w", p, fs.ErrExist)
		}
	}
	res := &specs.LinuxResources{}
	if l.CPUs > 0 {
		shares, period, quota := cpuShares(l.CPUs), uint64(cfsPeriodUsec), cfsQuota(l.CPUs)
		res.CPU = &specs.LinuxCPU{Shares: &shares}
		if !l.SharesOnly {
			res.CPU.Period, res.CPU.Quota = &period, &quota
		}
	}
	if l.MemBytes > 0 {
		mem := l.MemBytes
		res.Memory = &specs.LinuxMemory{Limit: &mem}
		if b.memsw {
			// memory+swap = memory: the limit is hard even on hosts with swap.
			res.Memory.Swap = &mem
		}
	}
	if l.Pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: &l.Pids}
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(p), res, b.opts()...)
	if err != nil {
		if partial, lerr := cgroup1.Load(cgroup1.StaticPath(p), b.opts()...); lerr == nil {
			_ = partial.Delete()
		}
		return nil, err
	}
	return &v1Handle{b: b, path: p, cg: cg}, nil
}

func (b *v1Backend) load(id string) (handle, error) {
	p := b.path(id)
	cg, err := cgroup1.Load(cgroup1.StaticPath(p), b.opts()...)
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgroup %s: %w", p, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return &v1Handle{b: b, path: p, cg: cg}, nil
}

func (b *v1Backend) list() ([]string, error) {
	var ids []string
	for _, s := range b.subs {
		names, err := listDirs(s.(pather).Path(b.path("")))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		ids = append(ids, names...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (b *v1Backend) removeRoot() error {
	cg, err := cgroup1.Load(cgroup1.StaticPath(b.path("")), b.opts()...)
	if err == nil {
		err = cg.Delete()
	}
	if err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return err
	}
	for _, s := range b.subs {
		removeEmptyParents(s.(pather).Path("/"), b.root)
	}
	return nil
}

type v1Handle struct {
	b    *v1Backend
	path string
	cg   cgroup1.Cgroup
}

func (h *v1Handle) add(pid int) error {
	return h.cg.AddProc(uint64(pid))
}

func (h *v1Handle) procs() ([]int, error) {
	// Every hierarchy holds the same processes; prefer those that are always there.
	var name cgroup1.Name
	for _, n := range []cgroup1.Name{cgroup1.Freezer, cgroup1.Pids, cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct} {
		if slices.ContainsFunc(h.cg.Subsystems(), func(s cgroup1.Subsystem) bool { return s.Name() == n }) {
			name = n
			break
		}
	}
	ps, err := h.cg.Processes(name, true)
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgroup %s: %w", h.path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ps))
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

func (h *v1Handle) usage() (Usage, error) {
	m, err := h.cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if m.CPU != nil && m.CPU.Usage != nil {
		// cpuacct.stat splits CPU time into user and system in scheduler ticks, while
		// cpuacct.usage is exact: split the exact total in the ticks' proportion, as the
		// kernel does for /proc/<pid>/stat.
		user, sys, total := float64(m.CPU.Usage.User), float64(m.CPU.Usage.Kernel), float64(m.CPU.Usage.Total)
		switch {
		case total > 0 && user+sys > 0:
			user, sys = total*user/(user+sys), total*sys/(user+sys)
		case total > 0:
			user = total
		}
		u.CPUUserSecs, u.CPUSystemSecs = user/1e9, sys/1e9
	}
	if m.Memory != nil {
		u.MemRSSBytes = int64(m.Memory.TotalRSS)
		if m.Memory.Usage != nil {
			u.MemUsageBytes = int64(m.Memory.Usage.Usage)
			u.MemLimitBytes = limitOrZero(m.Memory.Usage.Limit)
		}
	}
	if m.MemoryOomControl != nil {
		u.OOMKills = int(m.MemoryOomControl.OomKill)
	}
	if m.Pids != nil {
		u.Pids = int64(m.Pids.Current)
	} else if pids, err := h.procs(); err == nil {
		u.Pids = int64(len(pids))
	}
	return u, nil
}

func (h *v1Handle) oomKilled() (bool, error) {
	dir := h.b.dir(cgroup1.Memory, h.path)
	if dir == "" {
		return false, nil
	}
	oc, err := readKV(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return false, err
	}
	if n, ok := oc["oom_kill"]; ok {
		return n > 0, nil
	}
	// Kernels before 4.13 have no oom_kill counter. Infer it: the cgroup is in OOM now, or
	// its usage hit the limit and a charge failed. This can report page-cache pressure at the
	// limit as an OOM, so it is only a fallback.
	if oc["under_oom"] == 1 {
		return true, nil
	}
	failcnt, err1 := readInt(filepath.Join(dir, "memory.failcnt"))
	maxUsage, err2 := readInt(filepath.Join(dir, "memory.max_usage_in_bytes"))
	limit, err3 := readInt(filepath.Join(dir, "memory.limit_in_bytes"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return false, err
	}
	return failcnt > 0 && maxUsage >= limit, nil
}

func (h *v1Handle) signalAll(sig syscall.Signal) error {
	var freeze, thaw func() error
	if dir := h.b.dir(cgroup1.Freezer, h.path); dir != "" {
		// Not cgroup1.Cgroup.Freeze: it waits without a bound for the freezer to settle.
		state := filepath.Join(dir, "freezer.state")
		to := func(want string) func() error {
			return func() error {
				return setState(state, want, func() (bool, error) {
					b, err := os.ReadFile(state)
					return strings.TrimSpace(string(b)) == want, err
				})
			}
		}
		freeze, thaw = to("FROZEN"), to("THAWED")
	}
	return signalFrozen(freeze, thaw, h.procs, sig)
}

func (h *v1Handle) remove() error {
	err := h.cg.Delete()
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	return err
}

func (h *v1Handle) dir() (string, bool) { return "", false }
