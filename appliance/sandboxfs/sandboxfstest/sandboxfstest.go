// Package sandboxfstest builds the hostile sandboxes that the agent's and
// the observer's tests throw at their file APIs: a directory that a task's
// user swaps for a symlink out of the sandbox in a loop, and special files
// (a FIFO, a socket, a device) that a naive open would block on or serve.
package sandboxfstest

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Secret is the content of the file outside the sandbox, and the name of a
// second file there, so that a listing of the outside directory shows it
// too. No answer may contain it.
const Secret = "TOPSECRET-outside-the-sandbox"

// Public is the content of d/f while d is the real directory.
const Public = "public inside the sandbox\n"

// Swapper swaps dir/name, a directory holding f (Public), with a symlink
// to a directory outside holding f (Secret), as a task's user can:
// renameat2(RENAME_EXCHANGE) with dir/name.alt, so that dir/name always
// exists and is one or the other.
type Swapper struct {
	Swaps atomic.Int64 // exchanges done so far
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Swap lays out dir/name (made if missing) and dir/name.alt and starts
// swapping them until Stop (called at the test's cleanup too).
func Swap(t testing.TB, dir, name string) *Swapper {
	t.Helper()
	outside := t.TempDir()
	for name, data := range map[string]string{"f": Secret + "\n", Secret: Secret + "\n"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, alt := filepath.Join(dir, name), filepath.Join(dir, name+".alt")
	if err := os.MkdirAll(d, 0o755); err != nil {
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

// Race makes n GET requests, workers at a time, round robin over urls,
// while sw swaps, and stops sw. It fails the test if any answer holds
// Secret, and if none was a 200 (then the race was never open and the test
// proved nothing).
func Race(t testing.TB, sw *Swapper, urls []string, n, workers int) {
	t.Helper()
	var (
		mu            sync.Mutex
		served, leaks int
		wg            sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				u := urls[i%len(urls)]
				resp, err := http.Get(u)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if strings.Contains(string(body), Secret) {
					if leaks++; leaks == 1 {
						t.Errorf("%s served what is outside the sandbox: %d %s", u, resp.StatusCode, body)
					}
				}
				if resp.StatusCode == http.StatusOK {
					served++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sw.Stop()
	t.Logf("%d requests, %d swaps, %d served from inside, %d leaks", n, sw.Swaps.Load(), served, leaks)
	if leaks > 0 {
		t.Errorf("%d of %d requests leaked the secret", leaks, n)
	}
	if served == 0 {
		t.Error("no request was served: the race was never open")
	}
}

// Get GETs url over a real connection and returns the status and body; it
// fails the test (status 0) if there is no answer within 10 seconds (the
// request blocked).
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s: %v (blocked?)", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Refused GETs url and fails the test unless the answer is a 4xx, or if
// there is none within 10 seconds (the request blocked).
func Refused(t testing.TB, url string) {
	t.Helper()
	code, body := Get(t, url)
	if code == 0 {
		return
	}
	if code < 400 || code > 499 {
		t.Errorf("%s: %d %s, want a 4xx", url, code, body)
		return
	}
	t.Logf("%s: %d %s", url, code, strings.TrimSpace(body))
}
