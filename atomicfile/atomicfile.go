// Package atomicfile replaces files durably: a reader, or the machine
// after a crash, sees either the old content or the new, never a part.
// Every component that keeps state in a file (the agent's checkpoints,
// the executor's task checkpoints, ZooKeeper's snapshots, the scheduler's
// backups, the appliance's env and clusters.json) writes through it.
//
// A write goes to a temporary file in the same directory (named
// ".<name>.<random>.tmp", so listings can skip it), which is fsynced,
// renamed over the target, and then the directory is fsynced so that the
// rename itself survives a power loss.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return WriteFunc(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces path with what write writes, with permissions perm.
// Nothing changes at path if write fails.
func WriteFunc(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return SyncDir(dir)
}

// Rename renames from to to and fsyncs the directories involved, so that
// the move survives a crash.
func Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := SyncDir(filepath.Dir(to)); err != nil {
		return err
	}
	if fd := filepath.Dir(from); fd != filepath.Dir(to) {
		return SyncDir(fd)
	}
	return nil
}

// SyncDir fsyncs the directory dir, making the creations, renames and
// removals of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", dir, err)
	}
	return nil
}
