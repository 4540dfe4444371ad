// Package isolation puts the agent's containers in cgroups, so that a task gets the CPU,
// memory and process count its offer granted and no more, and so that the agent can measure
// usage, detect OOM kills and kill a whole process tree.
//
// The agent runs on developer laptops (mostly cgroup v2, unified hierarchy) and on CI and
// server hosts (often cgroup v1, legacy or hybrid), so the package hides the two cgroup
// versions behind one small API and does the version-specific work through
// github.com/containerd/cgroups/v3 (packages cgroup1 and cgroup2), as the design requires.
// Where cgroups cannot be used (not root, a read-only /sys/fs/cgroup, macOS, or
// AURORABOX_ISOLATION=none) the Isolator runs in [ModeNone]: tasks still run, unisolated,
// every Container method is a harmless no-op, and [Isolator.Reason] says why, so that
// `aurorabox status` and the UIs can report it plainly.
//
// # Layout
//
// Every container gets one cgroup named <root>/<container id>, where root is the path prefix
// given to [New] (for example "aurorabox/<cluster>"). On v1 this directory exists in each of
// the cpu, cpuacct, memory, pids and freezer hierarchies; on v2 it is one directory in the
// unified hierarchy. [Isolator.Cleanup] removes all of them, which is what `aurorabox down`
// uses to leave no cgroups behind.
//
// # Launching into a container
//
// The agent starts a child with os/exec and calls [Container.Add] with its pid right after
// Start. There is a small race: between fork and Add the child already runs outside the
// cgroup, and anything it forks in that window stays outside (Add moves one process; only
// later children inherit the cgroup). Two ways to close it:
//
//   - On cgroup v2 (kernel >= 5.7), [Container.CgroupFD] returns a directory fd to pass as
//     exec.Cmd.SysProcAttr.CgroupFD with UseCgroupFD set: the kernel then creates the child
//     directly inside the cgroup (clone3 CLONE_INTO_CGROUP), and Add is unnecessary.
//   - Otherwise the child should not fork before it has been added, for example by blocking
//     on a pipe until the agent writes to it after Add (the executor and this package's
//     tests do that).
package isolation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
)

// Mode is how containers are isolated.
type Mode string

// The isolation modes.
const (
	ModeV1   Mode = "cgroups-v1" // cgroup v1 (legacy or hybrid host) via containerd/cgroups/v3/cgroup1
	ModeV2   Mode = "cgroups-v2" // cgroup v2 unified hierarchy via containerd/cgroups/v3/cgroup2
	ModeNone Mode = "none"       // no isolation: containers run as plain processes
)

// EnvMode is the environment variable that forces a mode: "none" disables isolation;
// "" or "auto" detects it.
const EnvMode = "AURORABOX_ISOLATION"

// Limits is what a container may use. A zero field means no limit for that resource.
type Limits struct {
	CPUs float64 // cpu shares (1024 per CPU) and a CFS quota of CPUs*100ms per 100ms
	// SharesOnly leaves out the CFS quota: CPUs only weighs the container
	// against others (Mesos' default, --cgroups_enable_cfs=false).
	SharesOnly bool
	MemBytes   int64 // memory limit; swap is not allowed on top of it where the host accounts swap
	Pids       int64 // maximum number of tasks (processes and threads)
}

// Usage is a container's resource usage, read from its cgroup. CPU times and OOMKills are
// cumulative since the cgroup was created; the rest are current values.
type Usage struct {
	CPUUserSecs, CPUSystemSecs float64
	MemRSSBytes                int64 // anonymous memory (v1 total_rss, v2 anon)
	MemUsageBytes              int64 // everything charged, including page cache
	MemLimitBytes              int64 // 0 when unlimited
	Pids                       int64 // tasks in the cgroup
	OOMKills                   int   // processes the kernel OOM killer killed in the cgroup
}

// Isolator creates and finds container cgroups under one root.
type Isolator struct {
	mode   Mode
	reason string // why the mode is none
	root   string // cleaned relative cgroup path, no leading slash
	log    *slog.Logger
	be     backend // nil in ModeNone
}

// Container is one container's cgroup. Its methods are safe for concurrent use.
type Container struct {
	id string
	h  handle // nil in ModeNone

	mu       sync.Mutex
	fd       int // cached cgroup directory fd for CgroupFD, -1 when not open
	released bool
}

// backend is one cgroup version's implementation.
type backend interface {
	create(id string, l Limits) (handle, error)
	load(id string) (handle, error) // error wraps fs.ErrNotExist when there is no such cgroup
	list() ([]string, error)        // ids of the containers under root
	removeRoot() error              // removes the (empty) root and any empty parents
}

// handle is one container cgroup in a backend.
type handle interface {
	add(pid int) error
	procs() ([]int, error)
	usage() (Usage, error)
	oomKilled() (bool, error)
	signalAll(sig syscall.Signal) error
	remove() error
	dir() (string, bool) // a v2 directory usable with CLONE_INTO_CGROUP
}

// New returns an Isolator for containers under the cgroup path prefix root (such as
// "aurorabox/<cluster>"). It detects the host's cgroup version with cgroups.Mode and creates
// the root cgroup to prove it can; when that fails (or AURORABOX_ISOLATION=none) it logs the
// reason and returns an Isolator in ModeNone instead of an error. It fails only for an
// invalid root or an unknown AURORABOX_ISOLATION value.
func New(root string, logger *slog.Logger) (*Isolator, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r, err := cleanRoot(root)
	if err != nil {
		return nil, err
	}
	i := &Isolator{root: r, log: logger.With("cgroup_root", r)}
	switch env := os.Getenv(EnvMode); env {
	case "", "auto":
	case string(ModeNone):
		return i.none(EnvMode + "=none"), nil
	default:
		return nil, fmt.Errorf("isolation: %s=%q: want \"none\" or \"auto\"", EnvMode, env)
	}
	switch m := cgroups.Mode(); m {
	case cgroups.Legacy, cgroups.Hybrid:
		be, err := newV1(r, i.log)
		if err != nil {
			return i.none(fmt.Sprintf("cannot use cgroup v1: %v", err)), nil
		}
		i.mode, i.be = ModeV1, be
	case cgroups.Unified:
		be, err := newV2(r, unifiedMountpoint, i.log)
		if err != nil {
			return i.none(fmt.Sprintf("cannot use cgroup v2: %v", err)), nil
		}
		i.mode, i.be = ModeV2, be
	default:
		return i.none("no cgroup filesystem mounted at /sys/fs/cgroup"), nil
	}
	i.log.Info("container isolation enabled", "mode", i.mode)
	return i, nil
}

func (i *Isolator) none(reason string) *Isolator {
	i.mode, i.reason, i.be = ModeNone, reason, nil
	i.log.Warn("containers will run without isolation", "reason", reason)
	return i
}

// Mode reports how containers are isolated.
func (i *Isolator) Mode() Mode { return i.mode }

// Reason says why the mode is ModeNone ("" otherwise), for status output and UIs.
func (i *Isolator) Reason() string { return i.reason }

// Create makes a new cgroup for container id with limits l. It fails with an error wrapping
// fs.ErrExist if the container's cgroup already exists (use Load to recover it).
func (i *Isolator) Create(id string, l Limits) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("isolation: container %q: %w", id, err)
	}
	if i.be == nil {
		return newContainer(id, nil), nil
	}
	h, err := i.be.create(id, l)
	if err != nil {
		return nil, fmt.Errorf("isolation: create container %q: %w", id, err)
	}
	i.log.Debug("created container cgroup", "id", id, "cpus", l.CPUs, "mem_bytes", l.MemBytes, "pids", l.Pids)
	return newContainer(id, h), nil
}

// Load re-opens the cgroup of an existing container, as after an agent restart. It fails with
// an error wrapping fs.ErrNotExist when there is none. In ModeNone it returns a no-op
// Container.
func (i *Isolator) Load(id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if i.be == nil {
		return newContainer(id, nil), nil
	}
	h, err := i.be.load(id)
	if err != nil {
		return nil, fmt.Errorf("isolation: load container %q: %w", id, err)
	}
	return newContainer(id, h), nil
}

// List returns the ids of the containers under root (none in ModeNone).
func (i *Isolator) List() ([]string, error) {
	if i.be == nil {
		return nil, nil
	}
	ids, err := i.be.list()
	if err != nil {
		return nil, fmt.Errorf("isolation: list containers: %w", err)
	}
	return ids, nil
}

// Cleanup destroys every container cgroup under root (killing what still runs in them) and
// removes root itself, and its parents when they are left empty.
func (i *Isolator) Cleanup() error {
	if i.be == nil {
		return nil
	}
	ids, err := i.be.list()
	if err != nil {
		return fmt.Errorf("isolation: cleanup: %w", err)
	}
	var errs []error
	for _, id := range ids {
		c, err := i.Load(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = c.Destroy()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := i.be.removeRoot(); err != nil {
			errs = append(errs, fmt.Errorf("isolation: cleanup: %w", err))
		}
	}
	if len(ids) > 0 {
		i.log.Info("removed container cgroups", "count", len(ids), "errors", len(errs))
	}
	return errors.Join(errs...)
}

func newContainer(id string, h handle) *Container {
	return &Container{id: id, h: h, fd: -1}
}

// ID is the container's id.
func (c *Container) ID() string { return c.id }

// Add moves process pid into the container. Only children it forks afterwards inherit the
// cgroup: see the package documentation about the start-up race.
func (c *Container) Add(pid int) error {
	if c.h == nil {
		return nil
	}
	if pid <= 0 {
		return fmt.Errorf("isolation: container %q: invalid pid %d", c.id, pid)
	}
	if err := c.h.add(pid); err != nil {
		return fmt.Errorf("isolation: add pid %d to container %q: %w", pid, c.id, err)
	}
	return nil
}

// CgroupFD returns a file descriptor of the container's cgroup v2 directory, for
// exec.Cmd.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}, which starts the child directly
// inside the cgroup and so avoids the start-up race of Add. ok is false on cgroup v1, in
// ModeNone, and on kernels older than 5.7 (no CLONE_INTO_CGROUP). The Container owns the
// descriptor: do not close it; Destroy closes it.
func (c *Container) CgroupFD() (fd int, ok bool) {
	if c.h == nil || !cloneIntoCgroupSupported() {
		return -1, false
	}
	dir, ok := c.h.dir()
	if !ok {
		return -1, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return -1, false
	}
	if c.fd < 0 {
		fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return -1, false
		}
		c.fd = fd
	}
	return c.fd, true
}

// Usage reads the container's resource usage. It is zero in ModeNone.
func (c *Container) Usage() (Usage, error) {
	if c.h == nil {
		return Usage{}, nil
	}
	u, err := c.h.usage()
	if err != nil {
		return Usage{}, fmt.Errorf("isolation: usage of container %q: %w", c.id, err)
	}
	return u, nil
}

// OOMKilled reports whether the kernel's OOM killer has killed a process in the container
// because it reached its memory limit. It is false in ModeNone.
func (c *Container) OOMKilled() (bool, error) {
	if c.h == nil {
		return false, nil
	}
	k, err := c.h.oomKilled()
	if err != nil {
		return false, fmt.Errorf("isolation: oom state of container %q: %w", c.id, err)
	}
	return k, nil
}

// KillAll sends sig to every process in the container, wherever it is in the process tree
// (double forks and setsid do not escape a cgroup). The cgroup is frozen while the signal is
// sent so that nothing can fork in between; on v2 SIGKILL uses cgroup.kill when the kernel has
// it. KillAll does not wait for the processes to exit. It does nothing in ModeNone.
func (c *Container) KillAll(sig syscall.Signal) error {
	if c.h == nil {
		return nil
	}
	if err := c.h.signalAll(sig); err != nil {
		return fmt.Errorf("isolation: signal container %q: %w", c.id, err)
	}
	return nil
}

// Destroy kills every process left in the container, waits until the cgroup is empty and
// removes it. It is a no-op when the cgroup is already gone, and in ModeNone.
func (c *Container) Destroy() error {
	c.mu.Lock()
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
	c.released = true
	c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	if err := killAndWait(c.h); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("isolation: destroy container %q: %w", c.id, err)
	}
	if err := c.h.remove(); err != nil {
		return fmt.Errorf("isolation: destroy container %q: %w", c.id, err)
	}
	return nil
}

// destroyTimeout bounds how long Destroy waits for killed processes to leave the cgroup (a
// process in uninterruptible sleep can take a while).
const destroyTimeout = 5 * time.Second

// killAndWait SIGKILLs the cgroup's processes until none is left, for up to destroyTimeout.
func killAndWait(h handle) error {
	deadline := time.Now().Add(destroyTimeout)
	for {
		pids, err := h.procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes still running after SIGKILL (pids %v)", len(pids), pids)
		}
		if err := h.signalAll(syscall.SIGKILL); err != nil {
			return err
		}
		// Killed processes leave cgroup.procs as soon as they have exited.
		for range 50 {
			time.Sleep(5 * time.Millisecond)
			if pids, err := h.procs(); err != nil || len(pids) == 0 {
				break
			}
		}
	}
}

func (l Limits) check() error {
	switch {
	case math.IsNaN(l.CPUs) || math.IsInf(l.CPUs, 0) || l.CPUs < 0:
		return fmt.Errorf("invalid cpu limit %v", l.CPUs)
	case l.CPUs > 0 && l.CPUs*cfsPeriodUsec > math.MaxInt32:
		return fmt.Errorf("cpu limit %v too large", l.CPUs)
	case l.MemBytes < 0:
		return fmt.Errorf("invalid memory limit %d", l.MemBytes)
	case l.Pids < 0:
		return fmt.Errorf("invalid pids limit %d", l.Pids)
	}
	return nil
}

// cfsPeriodUsec is the CFS bandwidth period: a container may run CPUs*period per period.
const cfsPeriodUsec = 100_000

// cpuShares converts a CPU count to v1 cpu.shares (1024 per CPU, kernel minimum 2).
func cpuShares(cpus float64) uint64 {
	return uint64(max(2, math.Round(cpus*1024)))
}

// cfsQuota converts a CPU count to a CFS quota in microseconds per cfsPeriodUsec (kernel
// minimum 1ms).
func cfsQuota(cpus float64) int64 {
	return int64(max(1000, math.Round(cpus*cfsPeriodUsec)))
}

// cpuWeight converts v1 cpu.shares to a v2 cpu.weight the way runc and crun do, mapping
// [2, 262144] onto [1, 10000].
func cpuWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

func cleanRoot(root string) (string, error) {
	r := strings.Trim(path.Clean("/"+root), "/")
	if r == "" || strings.ContainsRune(root, 0) {
		return "", fmt.Errorf("isolation: invalid cgroup root %q", root)
	}
	for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
		if part == ".." {
			return "", fmt.Errorf("isolation: invalid cgroup root %q", root)
		}
	}
	return r, nil
}

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00\n") || len(id) > 200 {
		return fmt.Errorf("isolation: invalid container id %q", id)
	}
	return nil
}

// AgentRoot is the cgroup path under which an agent with this work dir and
// name keeps its containers. It is stable across restarts (recovery finds
// its containers again) and differs between clusters on one host. The
// agent creates it; the supervisor removes what is left of it on destroy.
func AgentRoot(workDir, name string) string {
	abs, err := filepath.Abs(workDir)
	if err != nil {
		abs = workDir
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + name))
	return "aurorabox/agent-" + hex.EncodeToString(sum[:6])
}
