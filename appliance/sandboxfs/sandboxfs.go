// Package sandboxfs is how the agent's /files API and the observer open
// files of a task's sandbox on behalf of a remote client: beneath the
// sandbox, regular files and directories only, and a bounded number at a
// time per client.
//
// A sandbox belongs to the task's user, who may rename, swap and relink
// anything in it while we look, so nothing here resolves a path first and
// opens it afterwards. The run directory (the Mesos sandbox,
// <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<executor>/runs/<container>)
// is opened as an [os.Root] from the agent's slaves directory, whose
// components above the run directory belong to the agent (the one symlink
// there, runs/latest, is the agent's own and is followed inside the slaves
// directory only). Everything below is opened through that root, which
// walks the path one component at a time with openat(O_NOFOLLOW) and
// follows a symlink only when its target stays beneath the root, so `..`,
// an absolute symlink or a directory swapped for a symlink out of the
// sandbox cannot reach outside it at any moment.
//
// [Open] opens with O_NONBLOCK and O_NOCTTY and checks the opened
// descriptor with fstat: a FIFO, socket or device is refused with
// [ErrNotRegular] (a FIFO with no writer would otherwise block the request
// forever), and a directory asked for as a file or the other way round with
// [ErrNotDir]/[ErrNotRegular]. Device nodes can only be created by root, and
// the kernel opens them before we can look; a sandbox holds them only if a
// task ran as root.
//
// [Limiter] bounds the requests that read a sandbox at once, per client
// address and in total, so that a slow or stuck reader cannot pin the
// server's threads and descriptors.
package sandboxfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

var (
	// ErrBadPath is a request path refused before any file system access.
	ErrBadPath = errors.New("bad path")
	// ErrOutside is a path that does not name something inside a sandbox.
	ErrOutside = errors.New("path is outside the sandboxes")
	// ErrNotRegular is something that is not a regular file (a FIFO, a
	// socket, a device, or a directory where a file was asked for).
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotDir is something other than a directory where one was asked for.
	ErrNotDir = errors.New("not a directory")
)

// Kind is what a caller wants to open.
type Kind int

const (
	// File is a regular file.
	File Kind = iota
	// Dir is a directory.
	Dir
)

// Open opens name beneath root for reading, without blocking and without
// following a symlink out of root, and returns it with its fstat
// information if it is of the kind asked for. Anything else (a FIFO, a
// socket, a device) is refused with an error wrapping [ErrNotRegular] or
// [ErrNotDir] that names what it is. A path leaving root fails as os.Root
// fails it (not [fs.ErrNotExist]).
func Open(root *os.Root, name string, kind Kind) (*os.File, fs.FileInfo, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	if kind == Dir {
		flags |= syscall.O_DIRECTORY
	}
	f, err := root.OpenFile(name, flags, 0)
	if err != nil {
		var errno syscall.Errno
		switch {
		case errors.As(err, &errno) && errno == syscall.ENXIO:
			// open(2) of a Unix socket.
			return nil, nil, fmt.Errorf("%s: %w (a socket or device)", name, ErrNotRegular)
		case errors.As(err, &errno) && errno == syscall.ENOTDIR && kind == Dir:
			return nil, nil, fmt.Errorf("%s: %w", name, ErrNotDir)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case kind == Dir && !fi.IsDir():
		err = fmt.Errorf("%s: %w", name, ErrNotDir)
	case kind == File && fi.IsDir():
		err = fmt.Errorf("%s: %w (a directory)", name, ErrNotRegular)
	case kind == File && !fi.Mode().IsRegular():
		err = fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, describe(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Status is the HTTP status and message that answer a failed Locate, Open,
// OpenRoot or OpenRun: 400 for a refused path or a file of the wrong kind
// (the message says which), 404 for a missing one, 403 for anything outside
// a sandbox (lexically, or through `..` or a symlink) or not readable.
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadPath), errors.Is(err, ErrNotRegular), errors.Is(err, ErrNotDir):
		return 400, err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return 404, "No such file or directory"
	case errors.Is(err, ErrOutside):
		return 403, ErrOutside.Error()
	}
	// os.Root's escape errors (`..` or a symlink leaving the root), a
	// symlink loop, or a permission error.
	return 403, "outside the sandbox or not readable"
}

// describe names a file type for an error message.
func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "mode " + m.String()
}

// RunPath is the path of a run directory (a Mesos sandbox) relative to the
// agent's slaves directory. Each element must be a single path component.
func RunPath(agent, framework, executor, container string) string {
	return filepath.Join(agent, "frameworks", framework, "executors", executor, "runs", container)
}

// Location is a host path mapped lexically into a sandbox.
type Location struct {
	// Run is the run directory relative to the slaves directory, as RunPath
	// makes it; its last element may be the agent's `latest` link.
	Run string
	// Rel is the path beneath the run directory ("." for the run directory
	// itself), clean and local.
	Rel string
}

// Locate maps an absolute host path, as the agent's /state shows sandbox
// directories, to a run directory under slavesDir and a path beneath it.
// It is lexical: `..` is resolved on the string first, as Mesos does, and
// the file system is not touched. Paths that are not absolute fail with a
// plain error; paths outside every run directory (including the
// directories above them) fail with [ErrOutside].
func Locate(slavesDir, requested string) (Location, error) {
	if requested == "" || !filepath.IsAbs(requested) || strings.ContainsRune(requested, 0) {
		return Location{}, fmt.Errorf("%w: must be absolute, without NUL bytes", ErrBadPath)
	}
	base, err := filepath.Abs(slavesDir)
	if err != nil {
		return Location{}, fmt.Errorf("slaves dir: %w", err)
	}
	rel, err := filepath.Rel(base, filepath.Clean(requested))
	if err != nil || !filepath.IsLocal(rel) {
		return Location{}, ErrOutside
	}
	// <agent>/frameworks/<fw>/executors/<executor>/runs/<container>/...
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) < 7 || parts[1] != "frameworks" || parts[3] != "executors" || parts[5] != "runs" {
		return Location{}, ErrOutside
	}
	loc := Location{Run: filepath.Join(parts[:7]...), Rel: "."}
	if len(parts) > 7 {
		loc.Rel = filepath.Join(parts[7:]...)
	}
	return loc, nil
}

// OpenRun opens a run directory (a RunPath, or a Location's Run) as a root.
// The run directory is found beneath slavesDir, so even a symlink among the
// agent's own directories cannot lead outside the slaves directory.
func OpenRun(slavesDir, run string) (*os.Root, error) {
	slaves, err := os.OpenRoot(slavesDir)
	if err != nil {
		return nil, err
	}
	defer slaves.Close()
	return OpenRoot(slaves, run)
}

// OpenRoot opens the directory name beneath parent as a root of its own.
// Unlike [os.Root.OpenRoot], it never blocks on a FIFO put where the
// directory was: every component, the last one too, is opened as a
// directory (the last as name/., so the final open is of "." within a
// directory descriptor).
func OpenRoot(parent *os.Root, name string) (*os.Root, error) {
	r, err := parent.OpenRoot(name + "/.")
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) && errno == syscall.ENOTDIR {
			return nil, fmt.Errorf("%s: %w", name, ErrNotDir)
		}
		return nil, err
	}
	return r, nil
}
