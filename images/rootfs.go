package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/atomicfile"
	"golang.org/x/sys/unix"
)

// Rootfs is a container's root filesystem, prepared from an image.
type Rootfs struct {
	// Container is the ID it was prepared for.
	Container string `json:"container"`
	// Path is the root filesystem's directory (an overlayfs mount or a copy).
	Path string `json:"path"`
	// Overlay says Path is an overlayfs mount (else a copy of the layers).
	Overlay bool `json:"overlay"`
	// ImageID is the image's ID (its config digest).
	ImageID string `json:"image_id"`
	// Ref is the reference Prepare was given.
	Ref string `json:"ref"`
	// Config is the image's Env, WorkingDir, User, Entrypoint and Cmd.
	Config ImageConfig `json:"config"`
	// Ready is false while Prepare is still making it.
	Ready bool `json:"ready"`
}

// containerRecord is containers/<id>/container.json.
const containerRecord = "container.json"

func (s *Store) containerDir(id string) (string, error) {
	if id == "" || id == "." || !filepath.IsLocal(id) || strings.ContainsAny(id, "/\\\x00") || len(id) > 200 {
		return "", fmt.Errorf("bad container ID %q (want a single path component)", id)
	}
	return filepath.Join(s.root, "containers", id), nil
}

// Prepare gives container its root filesystem from the image ref names
// (which must be in the store: see Ensure): an overlayfs mount of the
// image's layers with an upper directory of its own when the kernel
// allows, else a copy of the layers. The image stays in use, and out of
// GC's reach, until Release. Preparing a container that exists again
// returns it (mounting it again if it is not mounted, as after a reboot).
func (s *Store) Prepare(ctx context.Context, ref, container string) (*Rootfs, error) {
	dir, err := s.containerDir(container)
	if err != nil {
		return nil, err
	}
	var img *Image
	var existing *Rootfs
	// Under the lock: GC sees either no container or one with its record.
	err = s.updateIndex(func(ix *index) error {
		i, err := s.lookup(ix, ref)
		if err != nil {
			return err
		}
		i.LastUsed = time.Now().UTC()
		c := *i
		img = &c
		if b, err := os.ReadFile(filepath.Join(dir, containerRecord)); err == nil {
			var r Rootfs
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("container %s: %w", container, err)
			}
			if r.ImageID != i.ID {
				return fmt.Errorf("container %s already has a root filesystem from image %s", container, r.ImageID)
			}
			existing = &r
			return nil
		}
		os.RemoveAll(dir) // an earlier attempt that did not finish
		if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755); err != nil {
			return err
		}
		r := Rootfs{Container: container, Path: filepath.Join(dir, "rootfs"), ImageID: i.ID, Ref: ref, Config: i.Config}
		b, _ := json.Marshal(r)
		return atomicfile.Write(filepath.Join(dir, containerRecord), b, 0o600)
	})
	if err != nil {
		return nil, err
	}
	if existing != nil && !existing.Ready {
		// An earlier Prepare did not finish (the process died): start over.
		if err := s.Release(ctx, container); err != nil {
			return nil, err
		}
		return s.Prepare(ctx, ref, container)
	}
	if existing != nil {
		if existing.Overlay && !isMountPoint(existing.Path) {
			if err := s.mountOverlay(img, dir); err != nil {
				return nil, fmt.Errorf("container %s: mount again: %w", container, err)
			}
		}
		return existing, nil
	}
	r := &Rootfs{Container: container, Path: filepath.Join(dir, "rootfs"), ImageID: img.ID, Ref: ref, Config: img.Config}
	fail := func(err error) (*Rootfs, error) {
		s.Release(context.WithoutCancel(ctx), container)
		return nil, fmt.Errorf("container %s, image %s: %w", container, ref, err)
	}
	if !s.opts.NoOverlay {
		err := s.mountOverlay(img, dir)
		if err == nil {
			r.Overlay = true
		} else {
			s.log.Info("overlayfs not available; copying the image's layers", "container", container, "image", ref, "err", err)
		}
	}
	if !r.Overlay {
		for _, l := range img.Layers {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			if err := s.applyLayer(l, r.Path); err != nil {
				return fail(err)
			}
		}
	}
	r.Ready = true
	b, _ := json.Marshal(r)
	if err := atomicfile.Write(filepath.Join(dir, containerRecord), b, 0o600); err != nil {
		return fail(err)
	}
	return r, nil
}

// mountOverlay mounts img's layers at dir/rootfs with dir/upper and dir/work.
func (s *Store) mountOverlay(img *Image, dir string) error {
	var lowers []string
	for i := len(img.Layers) - 1; i >= 0; i-- {
		m, err := s.layerMeta(img.Layers[i])
		if err != nil {
			return err
		}
		if !m.Overlay {
			return fmt.Errorf("layer %s has no overlayfs whiteouts (unpacked without root)", img.Layers[i])
		}
		ld, _ := s.layerDir(img.Layers[i])
		lowers = append(lowers, filepath.Join(ld, "fs"))
	}
	if len(lowers) == 0 {
		empty := filepath.Join(dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lowers = append(lowers, empty)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, p := range append(lowers, dir) {
		if strings.ContainsAny(p, ":,\\") {
			return fmt.Errorf("path %q has a character overlayfs options cannot carry", p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lowers, ":"),
		filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if len(opts) >= os.Getpagesize()-1 {
		return fmt.Errorf("too many layers (%d) for one overlayfs mount option string", len(lowers))
	}
	if err := unix.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return nil
}

// isMountPoint says whether p is on another filesystem than its parent.
func isMountPoint(p string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(p, &a) != nil || unix.Lstat(filepath.Dir(p), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// Release unmounts and removes container's root filesystem; the image is
// then no longer in use by it. Releasing an unknown container is no error.
func (s *Store) Release(ctx context.Context, container string) error {
	dir, err := s.containerDir(container)
	if err != nil {
		return err
	}
	return s.locked(func() error {
		rootfs := filepath.Join(dir, "rootfs")
		for i := 0; i < 8 && isMountPoint(rootfs); i++ {
			if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("container %s: unmount: %w", container, err)
			}
		}
		if isMountPoint(rootfs) {
			return fmt.Errorf("container %s: %s is still mounted", container, rootfs)
		}
		// The record goes first: a half-removed directory is no container.
		if err := os.Remove(filepath.Join(dir, containerRecord)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.RemoveAll(dir)
	})
}

// Containers returns the root filesystems prepared and not released.
func (s *Store) Containers() ([]Rootfs, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "containers"))
	if err != nil {
		return nil, err
	}
	var out []Rootfs
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.root, "containers", e.Name(), containerRecord))
		if err != nil {
			continue
		}
		var r Rootfs
		if json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// containersUsing returns the IDs of images that containers use.
func (s *Store) containersUsing() (map[string]bool, error) {
	cs, err := s.Containers()
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, c := range cs {
		m[c.ImageID] = true
	}
	return m, nil
}

// applyLayer copies the layer diffID onto dst as the layer would apply:
// its whiteouts and opaque directories remove what lower layers put
// there, then its files replace what is in their way. Files are copied
// (not linked), so a task cannot change the store's layers; hard links
// within the layer stay hard links.
func (s *Store) applyLayer(diffID, dst string) error {
	m, err := s.layerMeta(diffID)
	if err != nil {
		return err
	}
	ld, _ := s.layerDir(diffID)
	src := filepath.Join(ld, "fs")
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, o := range m.Opaques {
		if o == "." {
			ents, err := os.ReadDir(dst)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := root.RemoveAll(e.Name()); err != nil {
					return err
				}
			}
			continue
		}
		if err := root.RemoveAll(o); err != nil {
			return fmt.Errorf("opaque %s: %w", o, err)
		}
	}
	for _, w := range m.Whiteouts {
		if err := root.RemoveAll(w); err != nil {
			return fmt.Errorf("whiteout %s: %w", w, err)
		}
	}
	asRoot := os.Geteuid() == 0
	links := map[[2]uint64]string{}
	type dirAttr struct {
		name string
		st   *syscall.Stat_t
	}
	var dirs []dirAttr
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if rel == "." {
			return nil
		}
		if fi.Mode()&fs.ModeCharDevice != 0 && st != nil && st.Rdev == 0 {
			return nil // an overlayfs whiteout, applied above
		}
		existing, lerr := root.Lstat(rel)
		if lerr == nil && !(existing.IsDir() && d.IsDir()) {
			if err := root.RemoveAll(rel); err != nil {
				return err
			}
		}
		switch {
		case d.IsDir():
			if lerr != nil || !existing.IsDir() {
				if err := root.Mkdir(rel, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirAttr{rel, st})
			return nil
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := root.Symlink(t, rel); err != nil {
				return err
			}
			if asRoot && st != nil {
				return root.Lchown(rel, int(st.Uid), int(st.Gid))
			}
			return nil
		case fi.Mode().IsRegular():
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					return root.Link(first, rel)
				}
				links[key] = rel
			}
			if err := copyFile(root, p, rel); err != nil {
				return err
			}
		case fi.Mode()&fs.ModeNamedPipe != 0:
			dir, base := filepath.Split(rel)
			if dir == "" {
				dir = "."
			}
			if err := withDir(root, dir, func(fd int) error {
				return unix.Mknodat(fd, base, unix.S_IFIFO|0o600, 0)
			}); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := copyAttrs(root, rel, fi, st, asRoot); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			return setXattrs(root, rel, fileXattrs(p), s.log)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		fi, err := os.Lstat(filepath.Join(src, dirs[i].name))
		if err != nil {
			return err
		}
		if err := copyAttrs(root, dirs[i].name, fi, dirs[i].st, asRoot); err != nil {
			return err
		}
		if err := setXattrs(root, dirs[i].name, fileXattrs(filepath.Join(src, dirs[i].name)), s.log); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(root *os.Root, src, rel string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyAttrs(root *os.Root, rel string, fi fs.FileInfo, st *syscall.Stat_t, asRoot bool) error {
	if asRoot && st != nil {
		if err := root.Lchown(rel, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err := root.Chmod(rel, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return root.Chtimes(rel, fi.ModTime(), fi.ModTime())
}
