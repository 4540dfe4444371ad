// Package sandboxfstest builds the hostile sandboxes that the agent's and
// the observer's tests throw at their file APIs: a directory that a task's
// user swaps for a symlink out of the sandbox in a loop, and special files
// (a FIFO, a socket, a device) that a naive open would block on or serve.
package sandboxfstest

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Secret is the content of the file outside the sandbox, and the name of a
// second file there, so that a listing of the outside directory shows it
// too. No answer may contain it.
const Secret = "TOPSECRET-outside-the-sandbox"

// Public is the content of d/f while d is the real directory.
const Public = "public inside the sandbox\n"

// Swapper swaps sandbox/d, a directory holding f (Public), with sandbox/alt,
// a symlink to a directory outside the sandbox holding f (Secret), as a
// task's user can: renameat2(RENAME_EXCHANGE), so that d always exists and
// is one or the other.
type Swapper struct {
	Swaps atomic.Int64 // exchanges done so far
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Swap lays out d and alt in sandbox and starts swapping them until Stop
// (called at the test's cleanup too).
func Swap(t testing.TB, sandbox string) *Swapper {
	t.Helper()
	outside := t.TempDir()
	for name, data := range map[string]string{"f": Secret + "\n", Secret: Secret + "\n"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, alt := filepath.Join(sandbox, "d"), filepath.Join(sandbox, "alt")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), []byte(Public), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, alt); err != nil {
		t.Fatal(err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
		t.Skipf("renameat2(RENAME_EXCHANGE) is not supported here: %v", err)
	}
	s := &Swapper{stop: make(chan struct{})}
	s.Swaps.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("swap: %v", err)
				return
			}
			s.Swaps.Add(1)
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop ends the swapping and waits for it; it may be called more than once.
func (s *Swapper) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

// Specials makes special files in dir and returns their names by kind:
// "fifo" (a named pipe nobody writes), "socket" (a Unix socket nobody
// listens on) and "device" (a character device like /dev/null by mknod
// where the test may, else a symlink to /dev/null).
func Specials(t testing.TB, dir string) map[string]string {
	t.Helper()
	names := map[string]string{"fifo": "fifo", "socket": "socket", "device": "device"}
	if err := unix.Mkfifo(filepath.Join(dir, names["fifo"]), 0o644); err != nil {
		t.Fatal(err)
	}
	// A socket's path is limited to 108 bytes: bind it in a short
	// directory and move it into dir.
	short, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(short)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(short, "s")})
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(short, "s"), filepath.Join(dir, names["socket"])); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(dir, names["device"])
	if err := unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		if err := os.Symlink("/dev/null", dev); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
