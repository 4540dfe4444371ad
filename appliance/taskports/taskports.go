// Package taskports reserves blocks of consecutive free TCP ports for the
// tasks of an agent, so that several clusters (appliances started with
// `--ports auto`, and test clusters) on one machine never offer the same task
// ports.
//
// A block is chosen outside the kernel's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range, where the kernel picks the ports
// of outgoing connections and of `--ports auto` components) and outside the
// fixed clusters' 31000–32000. Ports are reserved in chunks of ChunkSize: a
// reservation holds an flock(2) on one file per chunk in a lock directory
// shared by every aurorabox process of this user, for as long as it lives
// (the kernel drops the locks when it dies), so that two concurrent callers
// never pick the same chunk, even before any task has bound a port in it. A
// new block must also be free: every port in it is bound once to prove that
// nothing listens there.
package taskports

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ChunkSize is the granularity of reservations: a block of n ports takes
// ceil(n/ChunkSize) whole chunks, aligned to multiples of ChunkSize.
const ChunkSize = 100

// Fixed is the task port range of a cluster on fixed ports (Mesos' default).
var Fixed = Range{Lo: 31000, Hi: 32000}

// Range is an inclusive range of ports.
type Range struct{ Lo, Hi int }

// String is the range as "lo-hi".
func (r Range) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// Resource is the range as a Mesos --resources entry, "ports:[lo-hi]".
func (r Range) Resource() string { return fmt.Sprintf("ports:[%d-%d]", r.Lo, r.Hi) }

// Len is the number of ports in the range.
func (r Range) Len() int { return r.Hi - r.Lo + 1 }

// ParseRange reads "lo-hi".
func ParseRange(s string) (Range, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if ok {
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && l > 0 && l <= h && h <= 65535 {
			return Range{l, h}, nil
		}
	}
	return Range{}, fmt.Errorf("task port range %q: want lo-hi with 0 < lo <= hi <= 65535", s)
}

// Reservation is a held block of ports. Release it when done; the kernel
// releases it when the process dies.
type Reservation struct {
	Range
	locks []*os.File
}

// Release drops the reservation's locks.
func (r *Reservation) Release() {
	for _, f := range r.locks {
		f.Close()
	}
	r.locks = nil
}

// Options tune Reserve; the zero value is right outside tests.
type Options struct {
	LockDir   string              // [DefaultLockDir()]
	Ephemeral Range               // [the kernel's ip_local_port_range]
	Free      func(port int) bool // [bind the port on every address]
}

// Reserve finds n consecutive free ports that nobody else has reserved and
// reserves them.
func Reserve(n int, o Options) (*Reservation, error) {
	if n <= 0 || n > 10000 {
		return nil, fmt.Errorf("taskports: cannot reserve %d ports", n)
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	chunks := (n + ChunkSize - 1) / ChunkSize
	for _, lo := range candidates(chunks, o.Ephemeral) {
		r := Range{lo, lo + n - 1}
		res, err := lock(o.LockDir, r)
		if errors.Is(err, errBusy) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if allFree(r, o.Free) {
			return res, nil
		}
		res.Release()
	}
	return nil, fmt.Errorf("taskports: no %d consecutive free ports outside the ephemeral range %s and %s", n, o.Ephemeral, Fixed)
}

// Lock reserves r again, as after a restart whose tasks may still hold
// ports in it, so without checking that they are free. It fails with an
// error wrapping fs.ErrExist when another process holds part of r.
func Lock(r Range, o Options) (*Reservation, error) {
	if r.Lo <= 0 || r.Hi > 65535 || r.Lo > r.Hi {
		return nil, fmt.Errorf("taskports: invalid range %s", r)
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	res, err := lock(o.LockDir, r)
	if errors.Is(err, errBusy) {
		return nil, fmt.Errorf("taskports: ports %s are reserved by another process: %w", r, fs.ErrExist)
	}
	return res, err
}

func (o *Options) defaults() error {
	if o.LockDir == "" {
		d, err := DefaultLockDir()
		if err != nil {
			return err
		}
		o.LockDir = d
	}
	if o.Ephemeral == (Range{}) {
		o.Ephemeral = EphemeralRange()
	}
	if o.Free == nil {
		o.Free = bindable
	}
	return nil
}

var errBusy = errors.New("chunk reserved by another process")

// lock takes the chunk locks of r, or none.
func lock(dir string, r Range) (*Reservation, error) {
	root, err := openLockDir(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	res := &Reservation{Range: r}
	for c := r.Lo / ChunkSize; c <= r.Hi/ChunkSize; c++ {
		name := strconv.Itoa(c*ChunkSize) + ".lock"
		f, err := root.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			res.Release()
			return nil, fmt.Errorf("taskports: lock %s: %w", filepath.Join(dir, name), err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			res.Release()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errBusy
			}
			return nil, fmt.Errorf("taskports: lock %s: %w", filepath.Join(dir, name), err)
		}
		res.locks = append(res.locks, f)
	}
	return res, nil
}

// DefaultLockDir is where reservations are recorded: /run/aurorabox/task-ports
// for root, else aurorabox-<uid>/task-ports in the temp dir.
func DefaultLockDir() (string, error) {
	if os.Geteuid() == 0 {
		if fi, err := os.Stat("/run"); err == nil && fi.IsDir() {
			return "/run/aurorabox/task-ports", nil
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("aurorabox-%d", os.Geteuid()), "task-ports"), nil
}

// openLockDir creates dir (0700) if needed and opens it as a root, after
// checking that it and its parent are directories of this user that nobody
// else can write, so that another local user can neither plant files in it
// nor make it point elsewhere.
func openLockDir(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("taskports: lock dir: %w", err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return nil, fmt.Errorf("taskports: lock dir: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("taskports: lock dir %s must be a directory owned by uid %d and writable by nobody else", d, os.Geteuid())
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("taskports: lock dir: %w", err)
	}
	return root, nil
}

// candidates are the starts of blocks of the given number of chunks, below
// the ephemeral range and then above it, leaving out privileged ports and
// any chunk that overlaps Fixed.
func candidates(chunks int, eph Range) []int {
	var out []int
	size := chunks * ChunkSize
	for lo := 10000; lo+size-1 <= 65535; lo += ChunkSize {
		hi := lo + size - 1
		overlaps := func(r Range) bool { return lo <= r.Hi && r.Lo <= hi }
		if overlaps(eph) || overlaps(Range{Fixed.Lo / ChunkSize * ChunkSize, Fixed.Hi/ChunkSize*ChunkSize + ChunkSize - 1}) {
			continue
		}
		out = append(out, lo)
	}
	return out
}

func allFree(r Range, free func(int) bool) bool {
	for p := r.Lo; p <= r.Hi; p++ {
		if !free(p) {
			return false
		}
	}
	return true
}

// bindable reports whether a TCP listener can bind port on every address.
func bindable(port int) bool {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// EphemeralRange is the kernel's ip_local_port_range (Linux's default
// 32768-60999 when it cannot be read).
func EphemeralRange() Range {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo <= hi {
				return Range{lo, hi}
			}
		}
	}
	return Range{32768, 60999}
}
