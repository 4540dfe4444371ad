package images

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
)

// Progress reports a pull or load: the bytes read of the layers to fetch
// and the layers done (fetched or already in the store).
type Progress struct {
	Ref         string // the image being pulled or loaded
	LayersDone  int
	LayersTotal int
	Bytes       int64 // bytes read so far (compressed, as sent)
	TotalBytes  int64 // 0 when not known in advance
}

// ProgressFunc receives progress; calls are serialized (never two at once)
// but may come from different goroutines.
type ProgressFunc func(Progress)

// ErrorKind says why a pull or load failed.
type ErrorKind int

// The kinds of PullError.
const (
	ErrOther        ErrorKind = iota
	ErrUnknownImage           // the registry has no such repository, tag or digest
	ErrUnauthorized           // the registry refused (401/403)
	ErrNetwork                // the registry could not be reached
	ErrBadDigest              // content did not match its digest
	ErrBadLayer               // a layer is not a safe, valid tar
	ErrBadReference           // the reference does not parse
)

func (k ErrorKind) String() string {
	switch k {
	case ErrUnknownImage:
		return "unknown image or tag"
	case ErrUnauthorized:
		return "registry refused access"
	case ErrNetwork:
		return "registry unreachable"
	case ErrBadDigest:
		return "bad digest"
	case ErrBadLayer:
		return "refused layer"
	case ErrBadReference:
		return "invalid reference"
	}
	return "failed"
}

// PullError is the error of Pull and Load: which image, and why.
type PullError struct {
	Ref  string
	Kind ErrorKind
	Err  error
}

func (e *PullError) Error() string {
	return fmt.Sprintf("image %s: %s: %v", e.Ref, e.Kind, e.Err)
}

func (e *PullError) Unwrap() error { return e.Err }

// classify wraps err as a PullError of ref with the kind that fits it.
func classify(ref string, err error) error {
	if err == nil {
		return nil
	}
	var pe *PullError
	if errors.As(err, &pe) {
		return err
	}
	kind := ErrOther
	var te *transport.Error
	var de *digestError
	var le *layerError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &de):
		kind = ErrBadDigest
	case errors.As(err, &le):
		kind = ErrBadLayer
	case errors.As(err, &te):
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			kind = ErrUnauthorized
		case http.StatusNotFound:
			kind = ErrUnknownImage
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				kind = ErrUnknownImage
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				kind = ErrUnauthorized
			}
		}
	case errors.As(err, &oe), errors.As(err, &ne), errors.Is(err, syscall.ECONNREFUSED):
		kind = ErrNetwork
	case strings.Contains(err.Error(), "digest mismatch") || strings.Contains(err.Error(), "error verifying"):
		kind = ErrBadDigest
	}
	return &PullError{Ref: ref, Kind: kind, Err: err}
}

// ParseReference parses an image reference as the store does: plain HTTP
// is allowed for loopback registries and those in Options.InsecureRegistries.
func (s *Store) ParseReference(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if s.insecureOK(r.Context().RegistryStr()) {
		return name.ParseReference(ref, name.Insecure)
	}
	return r, nil
}

func (s *Store) insecureOK(host string) bool {
	for _, h := range s.opts.InsecureRegistries {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	hn := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hn = h
	}
	hn = strings.Trim(hn, "[]")
	if strings.EqualFold(hn, "localhost") {
		return true
	}
	ip := net.ParseIP(hn)
	return ip != nil && ip.IsLoopback()
}

// httpsOnly refuses plain-HTTP requests to registries that may not use it
// (go-containerregistry alone would also use HTTP for private addresses).
type httpsOnly struct {
	s    *Store
	next http.RoundTripper
}

func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !t.s.insecureOK(r.URL.Host) {
		return nil, fmt.Errorf("plain HTTP to registry %s is not allowed (only loopback registries and those given as insecure registries may use it)", r.URL.Host)
	}
	return t.next.RoundTrip(r)
}

func (s *Store) platform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if s.opts.Platform != "" {
		if pp, err := v1.ParsePlatform(s.opts.Platform); err == nil {
			p = *pp
		}
	}
	return p
}

// Pull fetches ref from its registry into the store (only the layers the
// store does not have) and tags it; it returns the image.
func (s *Store) Pull(ctx context.Context, ref string, progress ProgressFunc) (*Image, error) {
	r, err := s.ParseReference(ref)
	if err != nil {
		return nil, &PullError{Ref: ref, Kind: ErrBadReference, Err: err}
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	img, err := remote.Image(r,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(s.opts.Keychain),
		remote.WithTransport(httpsOnly{s, tr}),
		remote.WithPlatform(s.platform()),
	)
	if err != nil {
		return nil, classify(r.Name(), err)
	}
	out, err := s.importImage(ctx, r.Name(), img, []string{r.Name()}, true, 0, progress)
	return out, classify(r.Name(), err)
}

// Ensure returns the image ref names, pulling it first when the store
// does not have it.
func (s *Store) Ensure(ctx context.Context, ref string, progress ProgressFunc) (*Image, error) {
	img, err := s.Get(ref)
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return s.Pull(ctx, ref, progress)
}

// Load imports the images of a `docker save` archive (a file) or an OCI
// image layout (a directory). tag, if set, names the image (the archive
// must then hold one); otherwise the archive's own names are used
// (RepoTags, or the layout's image.name annotations).
func (s *Store) Load(ctx context.Context, path, tag string, progress ProgressFunc) ([]*Image, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &PullError{Ref: path, Err: err}
	}
	var extra []string
	if tag != "" {
		t, err := name.NewTag(tag)
		if err != nil {
			return nil, &PullError{Ref: path, Err: fmt.Errorf("bad --tag %q: %w", tag, err)}
		}
		extra = []string{t.Name()}
	}
	if st.IsDir() {
		return s.loadLayout(ctx, path, extra, progress)
	}
	return s.loadTarball(ctx, path, st.Size(), extra, progress)
}

func (s *Store) loadTarball(ctx context.Context, path string, size int64, extra []string, progress ProgressFunc) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, &PullError{Ref: path, Err: fmt.Errorf("not a docker save archive: %w", err)}
	}
	if len(extra) > 0 && len(m) != 1 {
		return nil, &PullError{Ref: path, Err: fmt.Errorf("--tag needs an archive with one image; it has %d", len(m))}
	}
	var out []*Image
	for _, d := range m {
		var names []string
		for _, t := range d.RepoTags {
			if tt, err := name.NewTag(t); err == nil {
				names = append(names, tt.Name())
			}
		}
		names = append(names, extra...)
		var tagp *name.Tag
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, &PullError{Ref: path, Err: err}
			}
			tagp = &t
		} else if len(m) > 1 {
			return nil, &PullError{Ref: path, Err: errors.New("the archive has several images and one has no name")}
		}
		img, err := tarball.Image(opener, tagp)
		if err != nil {
			return nil, &PullError{Ref: path, Err: err}
		}
		ref := path
		if len(names) > 0 {
			ref = names[0]
		}
		im, err := s.importImage(ctx, ref, img, names, false, size, progress)
		if err != nil {
			return nil, classify(ref, err)
		}
		out = append(out, im)
	}
	return out, nil
}

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"
)

func (s *Store) loadLayout(ctx context.Context, path string, extra []string, progress ProgressFunc) ([]*Image, error) {
	idx, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return nil, &PullError{Ref: path, Err: fmt.Errorf("not an OCI image layout: %w", err)}
	}
	type found struct {
		img   v1.Image
		names []string
	}
	var imgs []found
	var walk func(ix v1.ImageIndex, names []string, depth int) error
	walk = func(ix v1.ImageIndex, names []string, depth int) error {
		if depth > 4 {
			return errors.New("image indexes nested too deep")
		}
		im, err := ix.IndexManifest()
		if err != nil {
			return err
		}
		want := s.platform()
		for _, d := range im.Manifests {
			n := names
			if v := d.Annotations[annotationImageName]; v != "" {
				if t, err := name.NewTag(v); err == nil {
					n = append(append([]string(nil), n...), t.Name())
				}
			} else if v := d.Annotations[annotationRefName]; v != "" && strings.ContainsAny(v, "/:") {
				if t, err := name.NewTag(v); err == nil {
					n = append(append([]string(nil), n...), t.Name())
				}
			}
			if d.Platform != nil && d.Platform.OS != "" && !d.Platform.Satisfies(want) {
				continue
			}
			switch {
			case d.MediaType.IsImage():
				img, err := ix.Image(d.Digest)
				if err != nil {
					return err
				}
				imgs = append(imgs, found{img, n})
			case d.MediaType.IsIndex():
				sub, err := ix.ImageIndex(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(sub, n, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(idx, nil, 0); err != nil {
		return nil, &PullError{Ref: path, Err: err}
	}
	if len(imgs) == 0 {
		return nil, &PullError{Ref: path, Kind: ErrUnknownImage, Err: fmt.Errorf("the layout has no image for %s", want(s.platform()))}
	}
	if len(extra) > 0 && len(imgs) != 1 {
		return nil, &PullError{Ref: path, Err: fmt.Errorf("--tag needs a layout with one image; it has %d", len(imgs))}
	}
	var out []*Image
	for _, f := range imgs {
		names := append(f.names, extra...)
		ref := path
		if len(names) > 0 {
			ref = names[0]
		}
		im, err := s.importImage(ctx, ref, f.img, names, true, 0, progress)
		if err != nil {
			return nil, classify(ref, err)
		}
		out = append(out, im)
	}
	return out, nil
}

func want(p v1.Platform) string { return p.OS + "/" + p.Architecture }

// fetchParallel is how many layers a pull or load fetches at once.
const fetchParallel = 3

// importImage stores img's config and layers and tags it with names.
// compressed says the layers' Compressed streams are the stored bytes
// (registries, OCI layouts), to be checked against their digests; else
// (docker save) their Uncompressed streams are read. sourceSize, if set,
// is the progress total.
func (s *Store) importImage(ctx context.Context, ref string, img v1.Image, names []string, compressed bool, sourceSize int64, progress ProgressFunc) (*Image, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	if compressed {
		// The manifest's config digest: for OCI layouts, ConfigName is
		// only the hash of whatever the config file holds.
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		cfgName = m.Config.Digest
	}
	// Check the config before trusting the diff IDs it lists.
	if sum := sha256.Sum256(rawCfg); "sha256:"+hex.EncodeToString(sum[:]) != cfgName.String() {
		return nil, &digestError{what: "image config", want: cfgName.String(), got: "sha256:" + hex.EncodeToString(sum[:])}
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(rawCfg, &cf); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		return nil, fmt.Errorf("image is for %s, not linux", cf.OS)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image has %d layers but its config lists %d diff IDs", len(layers), len(cf.RootFS.DiffIDs))
	}
	var repoDigest string
	var rawManifest []byte
	if compressed {
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		repoDigest = d.String()
		if rawManifest, err = img.RawManifest(); err != nil {
			return nil, err
		}
	}

	diffIDs := make([]string, len(layers))
	for i, h := range cf.RootFS.DiffIDs {
		diffIDs[i] = h.String()
		if _, err := digestHex(diffIDs[i]); err != nil {
			return nil, &digestError{what: "layer diff ID", want: "sha256", got: diffIDs[i]}
		}
	}
	ls, err := s.newLease(diffIDs)
	if err != nil {
		return nil, err
	}
	defer ls.release()

	p := Progress{Ref: ref, LayersTotal: len(layers), TotalBytes: sourceSize}
	todo := make([]bool, len(layers))
	for i := range layers {
		dir, _ := s.layerDir(diffIDs[i])
		if _, err := os.Stat(filepath.Join(dir, "meta.json")); err != nil {
			todo[i] = true
		}
		if compressed {
			n, err := layers[i].Size()
			if err != nil {
				return nil, err
			}
			if todo[i] {
				p.TotalBytes += n
			}
		}
	}
	var mu sync.Mutex // guards p; progress calls are serialized by it
	report := func() {
		if progress != nil {
			q := p
			if q.TotalBytes > 0 && q.Bytes > q.TotalBytes {
				q.Bytes = q.TotalBytes
			}
			progress(q)
		}
	}
	report()
	// Up to fetchParallel layers at once; the first failure stops the rest.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, fetchParallel)
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		if !todo[i] {
			mu.Lock()
			p.LayersDone++
			report()
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := fctx.Err(); err != nil {
				errs[i] = err
				return
			}
			err := s.fetchLayer(fctx, ls, l, diffIDs[i], compressed, func(n int64) {
				mu.Lock()
				p.Bytes += n
				report()
				mu.Unlock()
			})
			if err != nil {
				errs[i] = fmt.Errorf("layer %d/%d (%s): %w", i+1, len(layers), diffIDs[i], err)
				cancel()
				return
			}
			mu.Lock()
			p.LayersDone++
			report()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs { // the cause, not the others' cancellation
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	size := int64(len(rawCfg))
	for _, d := range diffIDs {
		m, err := s.layerMeta(d)
		if err != nil {
			return nil, err
		}
		size += m.Size
	}

	if err := s.writeBlob(cfgName.String(), rawCfg); err != nil {
		return nil, err
	}
	if rawManifest != nil {
		if err := s.writeBlob(repoDigest, rawManifest); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	rec := &Image{
		ID:         cfgName.String(),
		RepoDigest: repoDigest,
		Layers:     diffIDs,
		Size:       size,
		Created:    cf.Created.UTC(),
		LastUsed:   now,
		Config:     imageConfig(&cf),
		Platform:   cf.OS + "/" + cf.Architecture,
	}
	var out Image
	err = s.updateIndex(func(ix *index) error {
		if old := ix.Images[rec.ID]; old != nil && rec.RepoDigest == "" {
			rec.RepoDigest = old.RepoDigest
		}
		ix.Images[rec.ID] = rec // a removed image pulled again is back
		for _, n := range names {
			ix.Tags[n] = rec.ID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = *rec
	out.Names = append([]string(nil), rec.Names...)
	return &out, nil
}

func imageConfig(cf *v1.ConfigFile) ImageConfig {
	c := cf.Config
	ic := ImageConfig{
		Env:        c.Env,
		WorkingDir: c.WorkingDir,
		User:       c.User,
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		Labels:     c.Labels,
	}
	for p := range c.ExposedPorts {
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	sort.Strings(ic.ExposedPorts)
	return ic
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r  io.Reader
	fn func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 && c.fn != nil {
		c.fn(int64(n))
	}
	return n, err
}

// fetchLayer streams l, verifies it and unpacks it into the store as
// layers/sha256/<diffID>.
func (s *Store) fetchLayer(ctx context.Context, ls *lease, l v1.Layer, diffID string, compressed bool, counted func(int64)) error {
	var (
		rc        io.ReadCloser
		err       error
		digest    string
		rawHasher hash.Hash
	)
	if compressed {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		digest = d.String()
		if _, err := digestHex(digest); err != nil {
			return &digestError{what: "layer", want: "sha256", got: digest}
		}
		rc, err = l.Compressed()
		if err != nil {
			return err
		}
	} else {
		rc, err = l.Uncompressed()
		if err != nil {
			return err
		}
	}
	defer rc.Close()
	var src io.Reader = &countingReader{r: rc, fn: counted}
	if compressed {
		rawHasher = sha256.New()
		src = io.TeeReader(src, rawHasher)
	}
	br := bufio.NewReaderSize(src, 64<<10)
	tarStream, closeDec, err := decompress(br)
	if err != nil {
		return err
	}
	defer closeDec()
	tarHasher := sha256.New()
	tmp, err := ls.tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// checkRaw reads the rest of the stream as sent and compares its
	// digest: a corrupt download is reported as such, even when it first
	// shows as a broken gzip or tar stream.
	checkRaw := func(cause error) error {
		if rawHasher == nil {
			return cause
		}
		_, rerr := io.Copy(io.Discard, br)
		if got := "sha256:" + hex.EncodeToString(rawHasher.Sum(nil)); got != digest {
			return &digestError{what: "layer", want: digest, got: got}
		}
		if cause == nil {
			cause = rerr
		}
		return cause
	}
	meta, err := unpack(ctx, io.TeeReader(tarStream, tarHasher), filepath.Join(tmp, "fs"), s.log.With("layer", diffID))
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return checkRaw(err)
	}
	// Read to the end: tar's trailer may leave bytes, and the hashes and
	// the registry client's own verification need the whole stream.
	if _, err := io.Copy(io.Discard, io.TeeReader(tarStream, tarHasher)); err != nil {
		return checkRaw(&layerError{err})
	}
	if err := checkRaw(nil); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(tarHasher.Sum(nil)); got != diffID {
		return &digestError{what: "layer diff ID", want: diffID, got: got}
	}
	meta.DiffID = diffID
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), mb, 0o600); err != nil {
		return err
	}
	dst, err := s.layerDir(diffID)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(filepath.Join(dst, "meta.json")); serr == nil {
			return nil // another pull unpacked it meanwhile
		}
		return fmt.Errorf("store layer: %w", err)
	}
	return nil
}

// decompress returns the tar stream inside br: gzip, zstd or plain.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, &layerError{fmt.Errorf("gzip: %w", err)}
		}
		return z, func() { z.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, &layerError{fmt.Errorf("zstd: %w", err)}
		}
		return z, z.Close, nil
	}
	return br, func() {}, nil
}

// lease marks the layers a pull or load needs, so that a concurrent GC
// keeps them; it holds an flock on tmp/<id>.lock while alive, and its
// temporary unpack directories live under tmp/<id>/.
type lease struct {
	s   *Store
	id  string
	f   *os.File
	mu  sync.Mutex
	seq int
}

func (s *Store) newLease(diffIDs []string) (*lease, error) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// Locked and written under another name first: GC takes any unlocked
	// <id>.lock for a dead pull's.
	p := filepath.Join(s.root, "tmp", id+".lock")
	f, err := os.OpenFile(p+".new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: lease: %w", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_, err = f.WriteString(strings.Join(diffIDs, "\n") + "\n")
	}
	if err == nil {
		err = os.Rename(p+".new", p)
	}
	if err != nil {
		os.Remove(p + ".new")
		f.Close()
		return nil, fmt.Errorf("images: lease: %w", err)
	}
	return &lease{s: s, id: id, f: f}, nil
}

func (l *lease) tempDir() (string, error) {
	l.mu.Lock()
	l.seq++
	seq := l.seq
	l.mu.Unlock()
	d := filepath.Join(l.s.root, "tmp", l.id, fmt.Sprint(seq))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", err
	}
	return d, nil
}

func (l *lease) release() {
	os.RemoveAll(filepath.Join(l.s.root, "tmp", l.id))
	os.Remove(filepath.Join(l.s.root, "tmp", l.id+".lock"))
	l.f.Close()
}
