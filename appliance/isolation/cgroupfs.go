package isolation

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// unifiedMountpoint is where a cgroup v2 host mounts the unified hierarchy.
const unifiedMountpoint = "/sys/fs/cgroup"

// freezeTimeout bounds waiting for a freezer to settle. A task in uninterruptible sleep
// can keep a cgroup in FREEZING; KillAll then signals without the freeze rather than hang.
const freezeTimeout = time.Second

// signalFrozen signals every process listed by procs while the cgroup is frozen, so that
// nothing forks between listing and signalling. freeze and thaw may be nil (no freezer). The
// freeze is best effort: when it fails or does not settle within freezeTimeout the processes
// are signalled unfrozen; the thaw always runs, so a container is never left frozen.
func signalFrozen(freeze, thaw func() error, procs func() ([]int, error), sig syscall.Signal) error {
	if freeze != nil {
		_ = freeze()
	}
	var errs []error
	pids, err := procs()
	if err != nil {
		errs = append(errs, err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	if thaw != nil {
		if err := thaw(); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("thaw: %w", err))
		}
	}
	return errors.Join(errs...)
}

// setState writes value to file and polls until check reports the wanted state, rewriting
// the value while it waits (as the freezer may need it), for up to freezeTimeout.
func setState(file, value string, check func() (bool, error)) error {
	deadline := time.Now().Add(freezeTimeout)
	for {
		if err := os.WriteFile(file, []byte(value), 0); err != nil {
			return err
		}
		ok, err := check()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not reach %q within %v", file, value, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// readKV parses a cgroup "key value" file such as memory.events or memory.oom_control.
func readKV(file string) (map[string]int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := make(map[string]int64)
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv, s.Err()
}

// readInt reads a single-number cgroup file.
func readInt(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// limitOrZero maps the "unlimited" values cgroups report (v1: a page-rounded MaxInt64; the
// cgroup2 package: MaxUint64 for "max") to 0.
func limitOrZero(v uint64) int64 {
	if v >= 1<<62 {
		return 0
	}
	return int64(v)
}

// listDirs returns the names of the subdirectories (child cgroups) of dir.
func listDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// removeEmptyParents removes the parents of the cgroup rel under mountpoint while they are
// empty: rmdir fails on a cgroup that still has children, which stops it at the first parent
// another cluster still uses.
func removeEmptyParents(mountpoint, rel string) {
	for p := path.Dir(rel); p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if err := os.Remove(filepath.Join(mountpoint, p)); err != nil && !os.IsNotExist(err) {
			return
		}
	}
}

// cloneIntoCgroupSupported reports whether the kernel has clone3 CLONE_INTO_CGROUP (5.7+).
var cloneIntoCgroupSupported = sync.OnceValue(func() bool {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return false
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return kernelAtLeast(b.String(), 5, 7)
})

// kernelAtLeast reports whether a release string such as "6.1.0-18-amd64" is at least
// major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	minStr := parts[1]
	if i := strings.IndexFunc(minStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minStr = minStr[:i]
	}
	mnr, err2 := strconv.Atoi(minStr)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}
