package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/atomicfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// ErrNotFound is returned (wrapped) for an image the store does not have.
var ErrNotFound = errors.New("image not in the store")

// Options configure a Store. The zero value is usable.
type Options struct {
	// Logger gets notes such as skipped device nodes; nil discards them.
	Logger *slog.Logger
	// Keychain finds registry credentials; nil means authn.DefaultKeychain
	// (~/.docker/config.json and its credential helpers, as Docker does).
	Keychain authn.Keychain
	// Transport carries registry requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// InsecureRegistries are registries (host or host:port) that may be
	// reached over plain HTTP. Loopback registries (localhost, 127.0.0.1,
	// [::1]) always may; any other registry needs HTTPS.
	InsecureRegistries []string
	// MaxBytes is the size cap GC keeps the store under; 0 means no cap.
	MaxBytes int64
	// NoOverlay makes Prepare copy the layers instead of trying overlayfs.
	NoOverlay bool
	// Platform is the OS/architecture chosen from multi-platform images;
	// empty means linux and the running architecture.
	Platform string
}

// Store is an image store under one directory. Its methods are safe for
// concurrent use, also by several processes on the same directory.
type Store struct {
	root string
	opts Options
	log  *slog.Logger
	mu   sync.Mutex // serializes this process's holders of the flock
}

// ImageConfig is what a task's process takes from the image.
type ImageConfig struct {
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	User         string            `json:"user,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"`
}

// Image is one image in the store.
type Image struct {
	// ID is the digest of the image's config, as Docker's IMAGE ID.
	ID string `json:"id"`
	// RepoDigest is the manifest digest it was pulled by (empty for loads
	// from a docker save archive).
	RepoDigest string `json:"repo_digest,omitempty"`
	// Names are the references (repository:tag) that point at it.
	Names []string `json:"names,omitempty"`
	// Layers are the diff IDs of its layers, bottom first.
	Layers []string `json:"layers"`
	// Size is the bytes of its unpacked layers and config.
	Size     int64       `json:"size"`
	Created  time.Time   `json:"created"`
	LastUsed time.Time   `json:"last_used"`
	Config   ImageConfig `json:"config"`
	// Platform is os/architecture from the config.
	Platform string `json:"platform,omitempty"`
	// Removed marks an image removed while a container used it: it is
	// no longer listed or found, and GC removes it once released.
	Removed bool `json:"removed,omitempty"`
}

// index is index.json.
type index struct {
	Images map[string]*Image `json:"images"` // by ID
	Tags   map[string]string `json:"tags"`   // reference name → ID
}

// Open opens (creating it if needed) the store under dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("images: no store directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	for _, d := range []string{"", "blobs/sha256", "layers/sha256", "containers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("images: create store: %w", err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	return &Store{root: abs, opts: opts, log: log}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.root }

// locked runs f holding the store's lock (in this process and, by
// flock(2), against other processes on the same directory).
func (s *Store) locked(f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lf, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("images: lock: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("images: lock: %w", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	return f()
}

func (s *Store) readIndex() (*index, error) {
	ix := &index{Images: map[string]*Image{}, Tags: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: read index: %w", err)
	}
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("images: index.json is corrupt: %w", err)
	}
	if ix.Images == nil {
		ix.Images = map[string]*Image{}
	}
	if ix.Tags == nil {
		ix.Tags = map[string]string{}
	}
	return ix, nil
}

func (s *Store) writeIndex(ix *index) error {
	for _, img := range ix.Images {
		img.Names = img.Names[:0]
	}
	for n, id := range ix.Tags {
		if img := ix.Images[id]; img != nil {
			img.Names = append(img.Names, n)
		} else {
			delete(ix.Tags, n)
		}
	}
	for _, img := range ix.Images {
		sort.Strings(img.Names)
	}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.root, "index.json"), b, 0o600)
}

// updateIndex reads, changes and writes the index under the lock.
func (s *Store) updateIndex(f func(*index) error) error {
	return s.locked(func() error {
		ix, err := s.readIndex()
		if err != nil {
			return err
		}
		if err := f(ix); err != nil {
			return err
		}
		return s.writeIndex(ix)
	})
}

// List returns the store's images, newest first.
func (s *Store) List() ([]Image, error) {
	var out []Image
	err := s.locked(func() error {
		ix, err := s.readIndex()
		if err != nil {
			return err
		}
		for _, img := range ix.Images {
			if !img.Removed {
				out = append(out, *img)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// Get returns the image a reference names: repository[:tag],
// repository@sha256:<manifest digest>, an image ID (sha256:<hex>) or an
// unambiguous prefix of at least 12 hex digits of one.
func (s *Store) Get(ref string) (*Image, error) {
	var out *Image
	err := s.locked(func() error {
		ix, err := s.readIndex()
		if err != nil {
			return err
		}
		img, err := s.lookup(ix, ref)
		if err != nil {
			return err
		}
		c := *img
		out = &c
		return nil
	})
	return out, err
}

func (s *Store) lookup(ix *index, ref string) (*Image, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, fmt.Errorf("empty image reference: %w", ErrNotFound)
	}
	if h, ok := strings.CutPrefix(ref, "sha256:"); ok || isHexPrefix(ref) {
		var found []*Image
		for id, img := range ix.Images {
			if !img.Removed && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), h) && (len(h) >= 12 || len(h) == 64) {
				found = append(found, img)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return nil, fmt.Errorf("image ID prefix %q is ambiguous: %w", ref, ErrNotFound)
		}
		if ok {
			return nil, fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: not a valid reference: %v: %w", ref, err, ErrNotFound)
	}
	if img := ix.Images[ix.Tags[r.Name()]]; img != nil && !img.Removed {
		return img, nil
	}
	if d, ok := r.(name.Digest); ok {
		for _, img := range ix.Images {
			if !img.Removed && img.RepoDigest == d.DigestStr() {
				return img, nil
			}
		}
	}
	return nil, fmt.Errorf("image %s: %w", ref, ErrNotFound)
}

func isHexPrefix(s string) bool {
	if len(s) < 12 || len(s) > 64 {
		return false
	}
	_, err := hex.DecodeString(s[:len(s)&^1])
	return err == nil && strings.Trim(s, "0123456789abcdef") == ""
}

// Remove removes the names a reference gives; when ref is an image ID, the
// image with all its names. Its layers go once no other image or container
// uses them (GC). An image in use by a container stays until released.
func (s *Store) Remove(ctx context.Context, ref string) error {
	err := s.updateIndex(func(ix *index) error {
		img, err := s.lookup(ix, ref)
		if err != nil {
			return err
		}
		if r, err := name.ParseReference(ref); err == nil && ix.Tags[r.Name()] == img.ID {
			delete(ix.Tags, r.Name()) // just this name
		} else {
			for n, id := range ix.Tags { // an ID: every name
				if id == img.ID {
					delete(ix.Tags, n)
				}
			}
		}
		for _, id := range ix.Tags {
			if id == img.ID {
				return nil // other names still point at it
			}
		}
		inUse, err := s.containersUsing()
		if err != nil {
			return err
		}
		if inUse[img.ID] {
			// Gone for new containers; GC removes it after its release.
			img.Removed = true
			return nil
		}
		delete(ix.Images, img.ID)
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.gc(ctx, 0)
	return err
}

// blobPath is where a config or manifest with digest d is kept.
func (s *Store) blobPath(d string) (string, error) {
	h, err := digestHex(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "blobs", "sha256", h), nil
}

func (s *Store) layerDir(diffID string) (string, error) {
	h, err := digestHex(diffID)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "layers", "sha256", h), nil
}

// digestHex checks that d is sha256:<64 hex> and returns the hex.
func digestHex(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("bad digest %q: want sha256:<64 lowercase hex digits>", d)
	}
	return h, nil
}

// writeBlob stores b under its digest d after checking it matches.
func (s *Store) writeBlob(d string, b []byte) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d {
		return &digestError{what: "blob", want: d, got: got}
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return atomicfile.Write(p, b, 0o600)
}

// ReadConfig returns the raw image config (JSON) of the image with ID id.
func (s *Store) ReadConfig(id string) ([]byte, error) {
	p, err := s.blobPath(id)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

type digestError struct {
	what, want, got string
}

func (e *digestError) Error() string {
	return fmt.Sprintf("%s digest mismatch: want %s, got %s", e.what, e.want, e.got)
}
