package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout names in layer tars (the OCI image spec's, from AUFS).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh."
	// overlayOpaqueXattr marks an opaque directory for overlayfs.
	overlayOpaqueXattr = "trusted.overlay.opaque"
)

// layerMeta is a layer's meta.json.
type layerMeta struct {
	DiffID string `json:"diff_id"`
	// Size is the bytes of the layer's regular files.
	Size int64 `json:"size"`
	// Whiteouts are the paths this layer deletes from the layers below.
	Whiteouts []string `json:"whiteouts,omitempty"`
	// Opaques are directories whose lower contents this layer hides.
	Opaques []string `json:"opaques,omitempty"`
	// Overlay says whiteouts and opaque directories are also marked in fs
	// as overlayfs expects them, so fs can be an overlayfs lower directory.
	Overlay bool `json:"overlay"`
	// Skipped lists entries not unpacked (device nodes).
	Skipped []string `json:"skipped,omitempty"`
}

func (s *Store) layerMeta(diffID string) (*layerMeta, error) {
	dir, err := s.layerDir(diffID)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", diffID, err)
	}
	var m layerMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("layer %s: meta.json: %w", diffID, err)
	}
	return &m, nil
}

// layerError is a layer refused for its content.
type layerError struct{ err error }

func (e *layerError) Error() string { return e.err.Error() }
func (e *layerError) Unwrap() error { return e.err }

// entryName checks a tar entry name and returns it relative to the layer
// root: no absolute names and no ".." components.
func entryName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", &layerError{fmt.Errorf("entry %q: absolute path", n)}
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", &layerError{fmt.Errorf("entry %q: path escapes the layer (..)", n)}
		}
	}
	c := path.Clean(n)
	if c != "." && !filepath.IsLocal(c) {
		return "", &layerError{fmt.Errorf("entry %q: not a path inside the layer", n)}
	}
	return c, nil
}

// unpack extracts the layer tar r into dir (which must not exist). Every
// file is created beneath dir through an os.Root, so no entry, hard link
// or symbolic link can write outside it.
func unpack(ctx context.Context, r io.Reader, dir string, log *slog.Logger) (*layerMeta, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	asRoot := os.Geteuid() == 0
	meta := &layerMeta{Overlay: asRoot}
	type dirAttr struct {
		name  string
		hdr   *tar.Header
		mtime time.Time
	}
	var dirs []dirAttr
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &layerError{fmt.Errorf("tar: %w", err)}
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "." {
			continue
		}
		refuse := func(err error) error {
			return &layerError{fmt.Errorf("entry %q: %w", hdr.Name, err)}
		}
		parent, base := path.Split(name)
		parent = strings.TrimSuffix(parent, "/")
		if parent == "" {
			parent = "."
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return nil, refuse(err)
			}
			switch {
			case base == whiteoutOpaque:
				meta.Opaques = append(meta.Opaques, parent)
				if meta.Overlay {
					if err := withDir(root, parent, func(fd int) error {
						return unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0)
					}); err != nil {
						log.Info("cannot mark opaque directory for overlayfs; the layer will be copied", "dir", parent, "err", err)
						meta.Overlay = false
					}
				}
			case strings.HasPrefix(base, whiteoutMeta):
				// Other AUFS metadata (.wh..wh.plnk, ...): nothing to apply.
			default:
				target := path.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
				if _, err := entryName(target); err != nil || target == "." {
					return nil, refuse(errors.New("bad whiteout"))
				}
				meta.Whiteouts = append(meta.Whiteouts, target)
				if meta.Overlay {
					if err := root.RemoveAll(target); err != nil {
						return nil, refuse(err)
					}
					if err := withDir(root, parent, func(fd int) error {
						return unix.Mknodat(fd, path.Base(target), unix.S_IFCHR, 0)
					}); err != nil {
						log.Info("cannot make overlayfs whiteout; the layer will be copied", "path", target, "err", err)
						meta.Overlay = false
					}
				}
			}
			continue
		}
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return nil, refuse(err)
		}
		if fi, err := root.Lstat(name); err == nil {
			if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
				if err := root.RemoveAll(name); err != nil {
					return nil, refuse(err)
				}
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, refuse(err)
		}
		mode := os.FileMode(hdr.Mode & 0o777)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, refuse(err)
			}
			dirs = append(dirs, dirAttr{name, hdr, hdr.ModTime})
			continue
		case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, refuse(err)
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, refuse(err)
			}
			meta.Size += n
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return nil, refuse(err)
			}
			if asRoot {
				if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
					return nil, refuse(err)
				}
			}
			continue
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil || target == "." {
				return nil, refuse(fmt.Errorf("hard link to %q outside the layer", hdr.Linkname))
			}
			if err := root.Link(target, name); err != nil {
				return nil, refuse(fmt.Errorf("hard link to %q: %w", hdr.Linkname, err))
			}
			continue // the target's attributes are the link's
		case tar.TypeFifo:
			if err := withDir(root, parent, func(fd int) error {
				return unix.Mknodat(fd, base, unix.S_IFIFO|0o600, 0)
			}); err != nil {
				return nil, refuse(err)
			}
		case tar.TypeChar, tar.TypeBlock:
			log.Info("device node in image layer skipped (tasks get a minimal /dev)", "path", name)
			meta.Skipped = append(meta.Skipped, name)
			continue
		default:
			log.Debug("tar entry type ignored", "path", name, "type", string(hdr.Typeflag))
			continue
		}
		if err := setAttrs(root, name, hdr, mode, asRoot); err != nil {
			return nil, refuse(err)
		}
		if err := setXattrs(root, name, paxXattrs(hdr), log); err != nil {
			return nil, refuse(err)
		}
	}
	// Directories last and deepest first, so that read-only directories
	// and their times are set after everything in them was created.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := setAttrs(root, d.name, d.hdr, os.FileMode(d.hdr.Mode&0o777), asRoot); err != nil {
			return nil, &layerError{fmt.Errorf("entry %q: %w", d.hdr.Name, err)}
		}
		if err := setXattrs(root, d.name, paxXattrs(d.hdr), log); err != nil {
			return nil, &layerError{fmt.Errorf("entry %q: %w", d.hdr.Name, err)}
		}
	}
	return meta, nil
}

// setAttrs gives name (not a symbolic link) the owner, mode and mtime of hdr.
func setAttrs(root *os.Root, name string, hdr *tar.Header, mode os.FileMode, asRoot bool) error {
	if asRoot {
		if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	if hdr.Mode&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	if err := root.Chmod(name, mode); err != nil {
		return err
	}
	return root.Chtimes(name, hdr.ModTime, hdr.ModTime)
}

// withDir runs f with a descriptor of the directory name beneath root.
func withDir(root *os.Root, name string, f func(fd int) error) error {
	d, err := root.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", name)
	}
	return f(int(d.Fd()))
}

// keptXattr says which extended attributes of an image's files are kept:
// file capabilities and the user namespace. Others, trusted.overlay.* above
// all (which would steer overlayfs), are dropped.
func keptXattr(name string) bool {
	return name == "security.capability" || strings.HasPrefix(name, "user.")
}

// paxXattrs returns the kept extended attributes a tar header carries.
func paxXattrs(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && keptXattr(n) {
			if m == nil {
				m = map[string]string{}
			}
			m[n] = v
		}
	}
	return m
}

// setXattrs sets xattrs on name (a file or directory beneath root), after
// its owner: chown clears file capabilities. A filesystem without them
// gets a note, not a refusal.
func setXattrs(root *os.Root, name string, xattrs map[string]string, log *slog.Logger) error {
	if len(xattrs) == 0 {
		return nil
	}
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	for k, v := range xattrs {
		if err := unix.Fsetxattr(int(f.Fd()), k, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				log.Info("extended attribute not kept", "path", name, "xattr", k, "err", err)
				continue
			}
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return nil
}

// fileXattrs reads the kept extended attributes of the file at p.
func fileXattrs(p string) map[string]string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n <= 0 {
		return nil
	}
	var m map[string]string
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !keptXattr(k) {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = string(v[:vn])
	}
	return m
}
