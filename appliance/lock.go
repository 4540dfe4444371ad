package appliance

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked means another appliance holds the data dir.
var ErrLocked = errors.New("another appliance is running on this data dir")

// LockedError says which process holds the lock.
type LockedError struct {
	DataDir string
	PID     int
}

func (e *LockedError) Error() string {
	how := ""
	if cmd := cmdline(e.PID); cmd != "" {
		how = ": " + cmd
	}
	return fmt.Sprintf("an appliance is already running on data dir %s (supervisor pid %d%s; `make run` or `aurorabox up` in another terminal counts too); "+
		"stop it with `aurorabox down` (or Ctrl-C where it runs in the foreground), or use another --data-dir", e.DataDir, e.PID, how)
}

// cmdline is pid's command line, space-separated, or "".
func cmdline(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lock is an flock(2) on <data-dir>/aurorabox.lock. The kernel drops it when
// the holder dies, so a kill -9 never leaves a stale lock behind, and the
// descriptor is close-on-exec, so children never inherit it.
type lock struct{ f *os.File }

func acquireLock(path, dataDir string) (*lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{DataDir: dataDir, PID: lockHolder(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lock{f}, nil
}

func (l *lock) release() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// lockHolder returns the pid written in the lock file, or 0.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// isLocked reports whether some process holds the lock at path.
func isLocked(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
