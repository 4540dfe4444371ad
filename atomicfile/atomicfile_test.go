package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Write replaces the file with its permissions and leaves no temporary
// file behind.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
}

// A failed write leaves the old content and no temporary file.
func TestFailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "snap")
	if err := Write(p, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFunc(p, 0o600, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "kept" {
		t.Errorf("content %q after a failed write", b)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}

// Concurrent writers of one file never mix: the file ends as one of the
// writes, whole.
func TestConcurrentWritersDoNotMix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Write(p, bytes.Repeat([]byte{byte('a' + i)}, 64<<10), 0o600); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(p)
	if len(b) != 64<<10 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
		t.Fatalf("file is not one whole write (%d bytes)", len(b))
	}
	if names := entries(t, filepath.Dir(p)); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
}

// Temporary names are hidden and end in .tmp, so listings (the observer's
// checkpoint scan) and recovery (ZooKeeper's snapshot clean-up) skip or
// remove them.
func TestTempNames(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "task-1")
	var tmp string
	WriteFunc(p, 0o600, func(io.Writer) error {
		names := entries(t, dir)
		if len(names) == 1 {
			tmp = names[0]
		}
		return fmt.Errorf("stop")
	})
	if !strings.HasPrefix(tmp, ".task-1.") || !strings.HasSuffix(tmp, ".tmp") {
		t.Errorf("temporary file %q, want .task-1.*.tmp", tmp)
	}
}

// Rename moves a file and it is there afterwards.
func TestRename(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	Write(filepath.Join(dir, "a", "x"), []byte("x"), 0o600)
	if err := Rename(filepath.Join(dir, "a", "x"), filepath.Join(dir, "b", "x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "b", "x")); err != nil || string(b) != "x" {
		t.Fatalf("moved file: %q %v", b, err)
	}
	if err := Rename(filepath.Join(dir, "a", "x"), filepath.Join(dir, "b", "y")); err == nil {
		t.Error("renaming a missing file succeeded")
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
