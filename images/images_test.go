package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one tar entry of a test layer.
type entry struct {
	name     string
	typ      byte
	body     []byte
	linkname string
	mode     int64
	pax      map[string]string
	uid, gid int
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: []byte(body), mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, linkname: target, mode: 0o777}
}

func tarBytes(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.linkname, ModTime: time.Unix(1700000000, 0), PAXRecords: e.pax, Uid: e.uid, Gid: e.gid, Devmajor: 1, Devminor: 3}
		if e.pax != nil {
			h.Format = tar.FormatPAX
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write(e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func layerOf(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	b := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busybox returns Debian's busybox-static binary, or skips.
func busybox(t testing.TB) []byte {
	t.Helper()
	why := "busybox not found"
	for _, p := range []string{"/usr/bin/busybox", "/bin/busybox"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// It runs alone inside the image: it must need no shared libraries.
		if f, err := elf.NewFile(bytes.NewReader(b)); err == nil {
			static := true
			for _, p := range f.Progs {
				static = static && p.Type != elf.PT_INTERP
			}
			if static {
				return b
			}
			why = p + " is dynamically linked"
		}
	}
	if os.Getenv("AURORABOX_REQUIRE_BUSYBOX") == "1" {
		t.Fatalf("%s (install busybox-static) and AURORABOX_REQUIRE_BUSYBOX=1", why)
	}
	t.Skipf("%s: install Debian's busybox-static to run the image tests", why)
	return nil
}

// baseLayer has /bin/busybox and a few links to it.
func baseLayer(t testing.TB) v1.Layer {
	bb := busybox(t)
	return layerOf(t,
		dir("bin/"),
		entry{name: "bin/busybox", typ: tar.TypeReg, body: bb, mode: 0o755},
		symlink("bin/sh", "/bin/busybox"),
		symlink("bin/cat", "busybox"),
		dir("etc/"),
		file("etc/os-release", "NAME=base\n"),
	)
}

func image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testRegistry is go-containerregistry's in-process registry on
// 127.0.0.1, behind an optional wrapper, counting blob fetches.
type testRegistry struct {
	srv  *httptest.Server
	host string
	mu   sync.Mutex
	gets map[string]int // blob digest → GETs
	wrap func(http.ResponseWriter, *http.Request, http.Handler)
}

func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	r := &testRegistry{gets: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if i := strings.Index(req.URL.Path, "/blobs/sha256:"); i >= 0 && req.Method == http.MethodGet {
			r.mu.Lock()
			r.gets[req.URL.Path[i+len("/blobs/"):]]++
			r.mu.Unlock()
		}
		r.mu.Lock()
		wrap := r.wrap
		r.mu.Unlock()
		if wrap != nil {
			wrap(w, req, reg)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

func (r *testRegistry) push(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	full := r.host + "/" + ref
	tag, err := name.NewTag(full, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	return full
}

func (r *testRegistry) blobGets(d v1.Hash) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[d.String()]
}

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Keychain == nil {
		opts.Keychain = anonymous
	}
	s, err := Open(filepath.Join(t.TempDir(), "images"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // no overlayfs mount outlives a failed test
		cs, _ := s.Containers()
		for _, c := range cs {
			s.Release(context.Background(), c.Container)
		}
	})
	return s
}

// tree lists a root filesystem: path → "d", "f:<content>" or "l:<target>".
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		switch {
		case fi.IsDir():
			out[rel] = "d"
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "l:" + l
		case rel == "bin/busybox":
			out[rel] = "busybox"
		case fi.Mode()&os.ModeNamedPipe != 0:
			out[rel] = "fifo"
		case !fi.Mode().IsRegular():
			out[rel] = "other: " + fi.Mode().String()
		default:
			b, _ := os.ReadFile(p)
			out[rel] = "f:" + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dirEntries(t *testing.T, d string) []string {
	t.Helper()
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Three layers: the second whites out a file and a directory and makes
// /d opaque; the third replaces a file and adds one in the opaque dir.
func threeLayerImage(t *testing.T) v1.Image {
	l2 := layerOf(t,
		dir("a/"),
		file("a/.wh.gone", ""),
		file(".wh.olddir", ""),
		dir("d/"),
		file("d/.wh..wh..opq", ""),
		file("d/new", "new in 2"),
		file("a/added", "added in 2"),
	)
	l1 := layerOf(t,
		dir("a/"), file("a/keep", "keep"), file("a/gone", "gone"),
		dir("olddir/"), file("olddir/x", "x"),
		dir("d/"), file("d/old1", "old1"), dir("d/sub/"), file("d/sub/old2", "old2"),
	)
	l3 := layerOf(t,
		dir("etc/"),
		file("etc/os-release", "NAME=aurorabox-test-image\n"),
		file("d/third", "third"),
		entry{name: "d/third-link", typ: tar.TypeLink, linkname: "d/third"},
		entry{name: "owned", typ: tar.TypeReg, body: []byte("suid"), mode: 0o4750, uid: 1234, gid: 5678},
		entry{name: "dev/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
	)
	return image(t, v1.Config{Env: []string{"PATH=/bin", "FOO=bar"}, WorkingDir: "/a", User: "65534", Cmd: []string{"/bin/sh"}},
		baseLayer(t), l1, l2, l3)
}

func TestPullWhiteoutsAndOpaqueDirs(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(t, "test/three:v1", threeLayerImage(t))
	for _, overlay := range []bool{true, false} {
		t.Run(fmt.Sprintf("overlay=%v", overlay), func(t *testing.T) {
			s := openStore(t, Options{NoOverlay: !overlay})
			var last Progress
			img, err := s.Pull(context.Background(), ref, func(p Progress) { last = p })
			if err != nil {
				t.Fatal(err)
			}
			if last.LayersDone != 4 || last.LayersTotal != 4 || last.Bytes != last.TotalBytes || last.Bytes == 0 {
				t.Errorf("last progress %+v, want 4/4 layers and all bytes", last)
			}
			if img.Config.WorkingDir != "/a" || img.Config.User != "65534" || strings.Join(img.Config.Env, " ") != "PATH=/bin FOO=bar" {
				t.Errorf("config %+v", img.Config)
			}
			rfs, err := s.Prepare(context.Background(), ref, "c1")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release(context.Background(), "c1")
			t.Logf("overlay mount: %v", rfs.Overlay)
			if overlay && os.Geteuid() == 0 && !rfs.Overlay {
				t.Log("overlayfs mount not possible here; the copy was used")
			}
			got := tree(t, rfs.Path)
			want := map[string]string{
				"bin": "d", "bin/busybox": "busybox", "bin/sh": "l:/bin/busybox", "bin/cat": "l:busybox",
				"etc": "d", "etc/os-release": "f:NAME=aurorabox-test-image\n",
				"a": "d", "a/keep": "f:keep", "a/added": "f:added in 2",
				"d": "d", "d/new": "f:new in 2", "d/third": "f:third", "d/third-link": "f:third",
				"owned": "f:suid", "dev": "d", "fifo": "fifo",
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rootfs:\n got %v\nwant %v", got, want)
			}
			var a, b syscall.Stat_t
			syscall.Stat(filepath.Join(rfs.Path, "d/third"), &a)
			syscall.Stat(filepath.Join(rfs.Path, "d/third-link"), &b)
			if a.Ino != b.Ino {
				t.Error("the hard link in the layer is not a hard link in the rootfs")
			}
			if fi, err := os.Stat(filepath.Join(rfs.Path, "bin/busybox")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("bin/busybox: %v %v", fi, err)
			}
			var o syscall.Stat_t
			if err := syscall.Stat(filepath.Join(rfs.Path, "owned"), &o); err != nil || o.Mode&0o7777 != 0o4750 {
				t.Errorf("owned: mode %o, want 4750 (%v)", o.Mode&0o7777, err)
			}
			if os.Geteuid() == 0 && (o.Uid != 1234 || o.Gid != 5678) {
				t.Errorf("owned: %d:%d, want 1234:5678", o.Uid, o.Gid)
			}
			if os.Geteuid() == 0 {
				// The image's own busybox reads the image's file, not the host's.
				cmd := exec.Command("/bin/sh", "-c", "cat /etc/os-release")
				cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rfs.Path}
				cmd.Dir = "/"
				out, err := cmd.CombinedOutput()
				if err != nil || string(out) != "NAME=aurorabox-test-image\n" {
					t.Errorf("chroot cat /etc/os-release: %q %v", out, err)
				}
			}
			// A task's writes stay in its rootfs, not in the store's layers.
			if err := os.WriteFile(filepath.Join(rfs.Path, "a/keep"), []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
			rfs2, err := s.Prepare(context.Background(), ref, "c2")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release(context.Background(), "c2")
			if b, _ := os.ReadFile(filepath.Join(rfs2.Path, "a/keep")); string(b) != "keep" {
				t.Errorf("second container sees %q: the first one's write reached the layer", b)
			}
		})
	}
}

func TestHostileLayersRefused(t *testing.T) {
	cases := map[string][]entry{
		"dotdot":               {file("../escaped", "x")},
		"dotdot-inner":         {dir("a/"), file("a/../../escaped", "x")},
		"absolute":             {file("/escaped", "x")},
		"abs-symlink-parent":   {symlink("evil", "/"), file("evil/escaped", "x")},
		"rel-symlink-parent":   {symlink("evil", "../../.."), file("evil/escaped", "x")},
		"symlink-dir-parent":   {symlink("evil", ".."), dir("evil/sub/")},
		"hardlink-outside":     {entry{name: "l", typ: tar.TypeLink, linkname: "../escaped"}},
		"whiteout-via-symlink": {symlink("evil", "/"), file("evil/.wh.escaped", "")},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			os.WriteFile(filepath.Join(base, "escaped"), []byte("host"), 0o644)
			layerDir := filepath.Join(base, "x", "y", "layer")
			os.MkdirAll(filepath.Dir(layerDir), 0o755)
			_, err := unpack(context.Background(), bytes.NewReader(tarBytes(t, entries...)), layerDir, testLogger(t))
			var le *layerError
			if !errors.As(err, &le) {
				t.Fatalf("unpack: %v, want a refused layer", err)
			}
			if b, _ := os.ReadFile(filepath.Join(base, "escaped")); string(b) != "host" {
				t.Errorf("file outside the layer changed: %q", b)
			}
			if ents := dirEntries(t, base); fmt.Sprint(ents) != "[escaped x]" {
				t.Errorf("outside the layer: %v", ents)
			}
			if _, err := os.Lstat("/escaped"); err == nil {
				t.Error("/escaped exists")
			}
		})
	}
	// Through a pull: refused, named, and nothing stays in the store.
	reg := newRegistry(t)
	ref := reg.push(t, "test/hostile:v1", image(t, v1.Config{}, layerOf(t, symlink("evil", "/tmp"), file("evil/escaped", "x"))))
	s := openStore(t, Options{})
	_, err := s.Pull(context.Background(), ref, nil)
	var pe *PullError
	if !errors.As(err, &pe) || pe.Kind != ErrBadLayer || !strings.Contains(err.Error(), ref) {
		t.Fatalf("pull: %v, want a refused layer naming %s", err, ref)
	}
	assertEmptyStore(t, s)
}

func testLogger(testing.TB) *slog.Logger { return slog.New(slog.DiscardHandler) }

func assertEmptyStore(t *testing.T, s *Store) {
	t.Helper()
	if l := dirEntries(t, filepath.Join(s.root, "layers", "sha256")); len(l) != 0 {
		t.Errorf("layers left: %v", l)
	}
	if l := dirEntries(t, filepath.Join(s.root, "tmp")); len(l) != 0 {
		t.Errorf("tmp left: %v", l)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("images: %v", imgs)
	}
}

func TestCorruptLayerRefused(t *testing.T) {
	reg := newRegistry(t)
	good := layerOf(t, file("data", strings.Repeat("good data ", 1000)))
	ref := reg.push(t, "test/corrupt:v1", image(t, v1.Config{},
		layerOf(t, file("before", strings.Repeat("b", 100000))), good, layerOf(t, file("after", strings.Repeat("a", 100000)))))
	d, _ := good.Digest()
	diffID, _ := good.DiffID()
	reg.wrap = func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		body[len(body)/2] ^= 0xff // one flipped byte inside the gzip stream
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}
	s := openStore(t, Options{})
	_, err := s.Pull(context.Background(), ref, nil)
	var pe *PullError
	if !errors.As(err, &pe) || pe.Kind != ErrBadDigest {
		t.Fatalf("pull of a corrupt layer: %v, want a bad digest", err)
	}
	if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "layer 2/3") {
		t.Errorf("error does not name the image and the layer: %v", err)
	}
	if dir, _ := s.layerDir(diffID.String()); dirExists(dir) {
		t.Error("the corrupt layer is in the store")
	}
	if l := dirEntries(t, filepath.Join(s.root, "tmp")); len(l) != 0 {
		t.Errorf("tmp left: %v", l)
	}
	// The other layers may have come in whole; nothing refers to them.
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertEmptyStore(t, s)
}

func dirExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A layer whose bytes decompress fine but do not match the config's
// diff ID is refused too (the docker save path has no compressed digest).
func TestDiffIDMismatchRefused(t *testing.T) {
	l := layerOf(t, file("data", "real"))
	img := image(t, v1.Config{}, l)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	bad, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	ref := reg.push(t, "test/diffid:v1", bad)
	s := openStore(t, Options{})
	_, err = s.Pull(context.Background(), ref, nil)
	var pe *PullError
	if !errors.As(err, &pe) || pe.Kind != ErrBadDigest {
		t.Fatalf("pull: %v, want a bad digest", err)
	}
	assertEmptyStore(t, s)
}

func TestSharedLayerUnpackedOnce(t *testing.T) {
	reg := newRegistry(t)
	base := baseLayer(t)
	refA := reg.push(t, "test/a:v1", image(t, v1.Config{}, base, layerOf(t, file("a", "a"))))
	refB := reg.push(t, "test/b:v1", image(t, v1.Config{}, base, layerOf(t, file("b", "b"))))
	s := openStore(t, Options{})
	if _, err := s.Pull(context.Background(), refA, nil); err != nil {
		t.Fatal(err)
	}
	var first Progress
	if _, err := s.Pull(context.Background(), refB, func(p Progress) {
		if first.LayersTotal == 0 {
			first = p
		}
	}); err != nil {
		t.Fatal(err)
	}
	bd, _ := base.Digest()
	if n := reg.blobGets(bd); n != 1 {
		t.Errorf("shared layer fetched %d times, want 1", n)
	}
	bs, _ := base.Size()
	if first.TotalBytes >= bs {
		t.Errorf("second pull plans %d bytes; the shared layer (%d) is already here", first.TotalBytes, bs)
	}
	if l := dirEntries(t, filepath.Join(s.root, "layers", "sha256")); len(l) != 3 {
		t.Errorf("%d layers unpacked, want 3: %v", len(l), l)
	}
	for i, ref := range []string{refA, refB} {
		r, err := s.Prepare(context.Background(), ref, fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(r.Path, "bin/busybox")); err != nil {
			t.Error(err)
		}
		s.Release(context.Background(), r.Container)
	}
}

func TestLoadDockerSaveAndOCILayout(t *testing.T) {
	img := image(t, v1.Config{Cmd: []string{"/bin/sh"}}, baseLayer(t), layerOf(t, file("etc/loaded", "yes")))
	tag, _ := name.NewTag("example.com/loaded/tarball:1.0")
	archive := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(t.TempDir(), "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{annotationImageName: "example.com/loaded/oci:2.0"})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ src, tag, want string }{
		{archive, "", "example.com/loaded/tarball:1.0"},
		{string(lp), "", "example.com/loaded/oci:2.0"},
		{string(lp), "mine:v3", "index.docker.io/library/mine:v3"},
	} {
		s := openStore(t, Options{})
		var last Progress
		imgs, err := s.Load(context.Background(), c.src, c.tag, func(p Progress) { last = p })
		if err != nil {
			t.Fatalf("load %s: %v", c.src, err)
		}
		if len(imgs) != 1 || !contains(imgs[0].Names, c.want) {
			t.Fatalf("load %s: %+v, want name %s", c.src, imgs, c.want)
		}
		if last.LayersDone != 2 || last.LayersTotal != 2 {
			t.Errorf("load %s: last progress %+v", c.src, last)
		}
		r, err := s.Prepare(context.Background(), c.want, "c")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(r.Path, "etc/loaded")); string(b) != "yes" {
			t.Errorf("load %s: etc/loaded = %q", c.src, b)
		}
		if _, err := os.Stat(filepath.Join(r.Path, "bin/busybox")); err != nil {
			t.Error(err)
		}
		if err := s.Release(context.Background(), "c"); err != nil {
			t.Error(err)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestGC(t *testing.T) {
	reg := newRegistry(t)
	big := func(tag, fill string) string {
		return reg.push(t, "test/gc:"+tag, image(t, v1.Config{}, layerOf(t, file("f", strings.Repeat(fill, 100000)))))
	}
	refA, refB, refC := big("a", "a"), big("b", "b"), big("c", "c")
	s := openStore(t, Options{})
	ctx := context.Background()
	for _, r := range []string{refA, refB, refC} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A is in use; B is the least recently used of the others.
	if _, err := s.Prepare(ctx, refA, "ca"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, refC, "cc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "cc"); err != nil {
		t.Fatal(err)
	}
	size, _ := s.Size()
	// Room for two of the three: B goes (least recently used), A and C stay.
	s.opts.MaxBytes = size * 2 / 3
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); got != "[a c]" {
		t.Fatalf("after GC with room for two: %s (%+v)", got, res)
	}
	if res.Bytes > s.opts.MaxBytes || res.RemovedLayers != 1 {
		t.Errorf("GC result %+v, cap %d", res, s.opts.MaxBytes)
	}
	// A cap of nothing: C goes, A is in use and stays, even untagged.
	s.opts.MaxBytes = 1
	if err := s.Remove(ctx, refA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("after rm of A (in use) and GC: listed %+v", imgs)
	}
	if _, err := s.Prepare(ctx, refA, "new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a removed image prepared a new container: %v", err)
	}
	r, _ := s.Containers()
	if _, err := os.Stat(filepath.Join(r[0].Path, "f")); err != nil {
		t.Fatalf("in-use rootfs lost its file: %v", err)
	}
	if err := s.Release(ctx, "ca"); err != nil {
		t.Fatal(err)
	}
	res, err = s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Fatalf("after release and GC: %+v", imgs)
	}
	if n, _ := s.Size(); n != 0 || res.Bytes != 0 {
		t.Errorf("store holds %d bytes (GC says %d), want 0", n, res.Bytes)
	}
	assertEmptyStore(t, s)
	if l := dirEntries(t, filepath.Join(s.root, "containers")); len(l) != 0 {
		t.Errorf("containers left: %v", l)
	}
}

func names(t *testing.T, s *Store) string {
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range imgs {
		for _, n := range i.Names {
			out = append(out, n[strings.LastIndex(n, ":")+1:])
		}
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// A pull in progress keeps its layers from a concurrent GC (its lease);
// a dead pull's lease and temporary files go.
func TestLeaseKeepsLayers(t *testing.T) {
	s := openStore(t, Options{})
	l, err := s.newLease([]string{"sha256:" + strings.Repeat("1", 64)})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.layerDir("sha256:" + strings.Repeat("1", 64))
	os.MkdirAll(filepath.Join(d, "fs"), 0o755)
	os.WriteFile(filepath.Join(d, "meta.json"), []byte(`{}`), 0o600)
	tmp, _ := l.tempDir()
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); err != nil {
		t.Fatalf("GC removed a leased layer: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("GC removed a live pull's temp dir: %v", err)
	}
	// The pull dies without releasing (its flock goes with its descriptor).
	l.f.Close()
	if _, err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); err == nil {
		t.Error("GC kept the layer of a dead pull")
	}
	assertEmptyStore(t, s)
}

func TestErrorsNameImageAndCause(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "test/known:v1", image(t, v1.Config{}, layerOf(t, file("x", "x"))))
	s := openStore(t, Options{})
	ctx := context.Background()

	_, err := s.Pull(ctx, reg.host+"/test/known:nope", nil)
	wantKind(t, err, ErrUnknownImage, reg.host+"/test/known:nope")
	_, err = s.Pull(ctx, reg.host+"/test/unknown:v1", nil)
	wantKind(t, err, ErrUnknownImage, reg.host+"/test/unknown:v1")

	reg.wrap = func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}
	_, err = s.Pull(ctx, reg.host+"/test/known:v1", nil)
	wantKind(t, err, ErrUnauthorized, reg.host+"/test/known:v1")

	closed := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	_, err = s.Pull(ctx, host+"/test/x:v1", nil)
	wantKind(t, err, ErrNetwork, host+"/test/x:v1")

	// Plain HTTP only to loopback registries unless allowed.
	for host, ok := range map[string]bool{"10.1.2.3:5000": false, "registry.example.com": false, "127.0.0.1:5000": true, "localhost:80": true, "[::1]:5000": true} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/", nil)
		_, err := httpsOnly{s, okTransport{}}.RoundTrip(req)
		if (err == nil) != ok {
			t.Errorf("plain HTTP to %s: %v, want allowed=%v", host, err, ok)
		}
	}
	if _, err := s.Get("test/never:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an unknown image: %v", err)
	}
	if _, err := s.Prepare(ctx, "test/never:v1", "c"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Prepare of an unknown image: %v", err)
	}
}

func wantKind(t *testing.T, err error, kind ErrorKind, ref string) {
	t.Helper()
	var pe *PullError
	if !errors.As(err, &pe) || pe.Kind != kind {
		t.Errorf("error %v: want kind %q", err, kind)
		return
	}
	if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), kind.String()) {
		t.Errorf("error %q does not name %s and %q", err, ref, kind)
	}
}

type okTransport struct{}

func (okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// anonymous is a keychain with no credentials (tests do not read ~/.docker).
var anonymous = authn.NewMultiKeychain()

// Pulls of the same image at once, through two Store values on one
// directory (as the CLI and the agent would be), all succeed and leave
// each layer once and no temporary files, while GC runs beside them.
func TestConcurrentPullsAndGC(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(t, "test/conc:v1", image(t, v1.Config{}, baseLayer(t), layerOf(t, file("x", "x"))))
	s1 := openStore(t, Options{})
	s2, err := Open(s1.root, Options{Keychain: anonymous})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			_, err := s.Pull(context.Background(), ref, nil)
			errs <- err
		}([]*Store{s1, s2}[i%2])
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if _, err := s2.GC(context.Background()); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if l := dirEntries(t, filepath.Join(s1.root, "layers", "sha256")); len(l) != 2 {
		t.Errorf("layers: %v, want 2", l)
	}
	if l := dirEntries(t, filepath.Join(s1.root, "tmp")); len(l) != 0 {
		t.Errorf("tmp left: %v", l)
	}
	r, err := s1.Prepare(context.Background(), ref, "c")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Path, "x")); string(b) != "x" {
		t.Errorf("x = %q", b)
	}
}

// Prepare of a prepared container returns it; after its overlayfs mount
// is gone (a reboot) it mounts it again with the container's own changes;
// a different image for the same container is refused.
func TestPrepareAgain(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(t, "test/again:v1", image(t, v1.Config{}, layerOf(t, file("x", "x"))))
	other := reg.push(t, "test/again:v2", image(t, v1.Config{}, layerOf(t, file("y", "y"))))
	s := openStore(t, Options{})
	ctx := context.Background()
	for _, r := range []string{ref, other} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	r1, err := s.Prepare(ctx, ref, "c")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r1.Path, "mine"), []byte("mine"), 0o644)
	r2, err := s.Prepare(ctx, ref, "c")
	if err != nil || r2.Path != r1.Path {
		t.Fatalf("again: %+v %v", r2, err)
	}
	if r1.Overlay {
		if err := syscall.Unmount(r1.Path, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prepare(ctx, ref, "c"); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(r1.Path, "mine")); string(b) != "mine" {
		t.Errorf("the container's own file: %q", b)
	}
	if _, err := s.Prepare(ctx, other, "c"); err == nil {
		t.Error("a second image for the same container was accepted")
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../c"} {
		if _, err := s.Prepare(ctx, ref, bad); err == nil {
			t.Errorf("container ID %q accepted", bad)
		}
	}
	if err := s.Release(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "c"); err != nil {
		t.Errorf("second release: %v", err)
	}
}

// An image pulled by digest, or loaded without a name, stays (found by
// its digest or ID) until removed.
func TestUnnamedImagesStay(t *testing.T) {
	reg := newRegistry(t)
	img := image(t, v1.Config{}, layerOf(t, file("x", "x")))
	reg.push(t, "test/digest:v1", img)
	d, _ := img.Digest()
	id, _ := img.ConfigName()
	byDigest := reg.host + "/test/digest@" + d.String()
	s := openStore(t, Options{})
	ctx := context.Background()
	if _, err := s.Pull(ctx, byDigest, nil); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(filepath.Join(t.TempDir(), "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	unnamed := image(t, v1.Config{}, layerOf(t, file("y", "y")))
	if err := lp.AppendImage(unnamed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, string(lp), "", nil); err != nil {
		t.Fatal(err)
	}
	uid, _ := unnamed.ConfigName()
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{byDigest, id.String(), uid.String(), uid.Hex[:12]} {
		if _, err := s.Get(ref); err != nil {
			t.Errorf("after GC: %v", err)
		}
	}
	if err := s.Remove(ctx, byDigest); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, uid.Hex[:12]); err != nil {
		t.Fatal(err)
	}
	assertEmptyStore(t, s)
}

// File capabilities and user xattrs survive unpacking (also after chown,
// which clears capabilities) in both modes; trusted.overlay.* from an
// image is dropped, so a layer cannot steer overlayfs.
func TestXattrsKept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("file capabilities need root")
	}
	// VFS_CAP_REVISION_2, effective, permitted CAP_NET_RAW (13).
	capNetRaw := string([]byte{0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	l := layerOf(t,
		entry{name: "ping", typ: tar.TypeReg, body: []byte("#!"), mode: 0o755, pax: map[string]string{
			"SCHILY.xattr.security.capability":    capNetRaw,
			"SCHILY.xattr.user.note":              "kept",
			"SCHILY.xattr.trusted.overlay.opaque": "y",
		}},
		entry{name: "d/", typ: tar.TypeDir, mode: 0o755, pax: map[string]string{
			"SCHILY.xattr.trusted.overlay.opaque": "y",
			"SCHILY.xattr.user.dir":               "kept",
		}},
		file("d/f", "f"),
	)
	lower := layerOf(t, file("d/lower", "lower"))
	reg := newRegistry(t)
	ref := reg.push(t, "test/xattr:v1", image(t, v1.Config{}, lower, l))
	for _, noOverlay := range []bool{false, true} {
		s := openStore(t, Options{NoOverlay: noOverlay})
		if _, err := s.Pull(context.Background(), ref, nil); err != nil {
			t.Fatal(err)
		}
		r, err := s.Prepare(context.Background(), ref, "c")
		if err != nil {
			t.Fatal(err)
		}
		get := func(p, k string) string {
			b := make([]byte, 256)
			n, err := syscall.Getxattr(filepath.Join(r.Path, p), k, b)
			if err != nil {
				return ""
			}
			return string(b[:n])
		}
		if got := get("ping", "security.capability"); got != capNetRaw {
			t.Errorf("overlay=%v: ping's capability %q", r.Overlay, got)
		}
		if get("ping", "user.note") != "kept" || get("d", "user.dir") != "kept" {
			t.Errorf("overlay=%v: user xattrs lost", r.Overlay)
		}
		// d was not made opaque by the image's trusted.overlay.opaque.
		if b, _ := os.ReadFile(filepath.Join(r.Path, "d/lower")); string(b) != "lower" {
			t.Errorf("overlay=%v: d/lower = %q: the image's trusted.overlay.opaque was applied", r.Overlay, b)
		}
		s.Release(context.Background(), "c")
	}
}

// A config whose bytes do not match the digest the manifest gives is
// refused before any layer is unpacked (registries' configs are checked
// by go-containerregistry too; an OCI layout's are only checked here).
func TestCorruptConfigRefused(t *testing.T) {
	img := image(t, v1.Config{}, layerOf(t, file("x", "x")))
	lp, err := layout.Write(filepath.Join(t.TempDir(), "oci"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{annotationImageName: "example.com/bad:config"})); err != nil {
		t.Fatal(err)
	}
	cfgName, _ := img.ConfigName()
	p := filepath.Join(string(lp), "blobs", "sha256", cfgName.Hex)
	raw, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(raw, []byte(`"linux"`), []byte(`"linuX"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{})
	_, err = s.Load(context.Background(), string(lp), "", nil)
	var pe *PullError
	if !errors.As(err, &pe) || pe.Kind != ErrBadDigest || !strings.Contains(err.Error(), "image config") {
		t.Fatalf("load: %v, want a bad config digest", err)
	}
	assertEmptyStore(t, s)
}
