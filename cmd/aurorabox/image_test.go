package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/images"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// runImage runs `aurorabox image ARGS --data-dir dir` and returns stdout,
// stderr and the error.
func runImage(t *testing.T, dir string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := rootCommand()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append(append([]string{"image"}, args...), "--data-dir", dir))
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func smallImage(t *testing.T) v1.Image {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("hello"))
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: time.Now().Add(-3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestImageCommands(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	var refuse atomic.Bool
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := smallImage(t)
	tag, _ := name.NewTag(host+"/test/small:v1", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	out, stderr, err := runImage(t, dir, "pull", host+"/test/small:v1")
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, stderr)
	}
	id, _ := img.ConfigName()
	if !strings.Contains(out, id.String()) || !strings.Contains(stderr, "1/1 layers") {
		t.Errorf("pull printed %q and %q", out, stderr)
	}

	// Errors name the image and the cause, and exit 1.
	for _, c := range []struct{ ref, cause string }{
		{host + "/test/small:nope", "unknown image or tag"},
		{host + "/test/missing:v1", "unknown image or tag"},
	} {
		_, _, err := runImage(t, dir, "pull", c.ref)
		assertImageError(t, err, c.ref, c.cause)
	}
	refuse.Store(true)
	_, _, err = runImage(t, dir, "pull", host+"/test/small:v1")
	assertImageError(t, err, host+"/test/small:v1", "registry refused access")
	refuse.Store(false)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	_, _, err = runImage(t, dir, "pull", closedHost+"/test/small:v1")
	assertImageError(t, err, closedHost+"/test/small:v1", "registry unreachable")

	// load --tag, then ls shows both names.
	archive := filepath.Join(t.TempDir(), "small.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = runImage(t, dir, "load", archive, "--tag", "example.com/small:loaded")
	if err != nil || !strings.Contains(out, "example.com/small:loaded") {
		t.Fatalf("load: %v\n%s%s", err, out, stderr)
	}
	out, _, err = runImage(t, dir, "ls")
	if err != nil {
		t.Fatal(err)
	}
	short := strings.TrimPrefix(id.String(), "sha256:")[:12]
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REPOSITORY") {
		t.Fatalf("ls:\n%s", out)
	}
	for _, want := range [][]string{{"example.com/small", "loaded"}, {host + "/test/small", "v1"}} {
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) >= 6 && f[0] == want[0] && f[1] == want[1] && f[2] == short && f[5] == "3h" {
				found = true
			}
		}
		if !found {
			t.Errorf("ls has no line for %v with ID %s created 3h ago:\n%s", want, short, out)
		}
	}

	// rm of a name, then of the other: the store is empty.
	if _, _, err := runImage(t, dir, "rm", "example.com/small:loaded"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runImage(t, dir, "rm", "example.com/small:loaded"); err == nil || !strings.Contains(err.Error(), "example.com/small:loaded") {
		t.Errorf("rm of a removed name: %v", err)
	}
	if _, _, err := runImage(t, dir, "rm", host+"/test/small:v1"); err != nil {
		t.Fatal(err)
	}
	st, err := images.Open(filepath.Join(dir, "images"), images.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Size(); err != nil || n != 0 {
		t.Errorf("store holds %d bytes after rm (%v)", n, err)
	}
}

func assertImageError(t *testing.T, err error, ref, cause string) {
	t.Helper()
	ee, ok := err.(*exitError)
	if !ok || ee.code != 1 {
		t.Errorf("pull %s: %v (%T), want exit 1", ref, err, err)
		return
	}
	if !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), cause) {
		t.Errorf("pull %s: %q does not name the image and %q", ref, err, cause)
	}
}

func TestSplitName(t *testing.T) {
	for n, want := range map[string]string{
		"index.docker.io/library/busybox:1.36":   "busybox 1.36",
		"index.docker.io/someone/app:latest":     "someone/app latest",
		"localhost:5000/a/b:v1":                  "localhost:5000/a/b v1",
		"localhost:5000/a/b@sha256:0123456789ab": "localhost:5000/a/b <none>",
	} {
		if r, tg := splitName(n); r+" "+tg != want {
			t.Errorf("splitName(%q) = %q %q, want %q", n, r, tg, want)
		}
	}
}

// On a terminal the bar redraws one line (only when it changes) and ends
// it; otherwise there is a line per layer done.
func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	b := &progressBar{w: &buf, verb: "pull", tty: true}
	steps := []images.Progress{
		{Ref: "x", LayersTotal: 2, TotalBytes: 2048},
		{Ref: "x", LayersTotal: 2, TotalBytes: 2048, Bytes: 1024},
		{Ref: "x", LayersTotal: 2, TotalBytes: 2048, Bytes: 1024},
		{Ref: "x", LayersTotal: 2, LayersDone: 2, TotalBytes: 2048, Bytes: 2048},
	}
	for _, p := range steps {
		b.update(p)
	}
	b.done()
	out := buf.String()
	if n := strings.Count(out, "\r\x1b[K"); n != 3 {
		t.Errorf("%d redraws, want 3 (the repeated step is not drawn): %q", n, out)
	}
	if !strings.HasSuffix(out, "[==============================] 2/2 layers 2.0 KiB/2.0 KiB\n") {
		t.Errorf("last line: %q", out)
	}
	buf.Reset()
	b = &progressBar{w: &buf, verb: "load"}
	for _, p := range steps {
		b.update(p)
	}
	b.done()
	if want := "load x: 0/2 layers, 0 B/2.0 KiB\nload x: 2/2 layers, 2.0 KiB/2.0 KiB\n"; buf.String() != want {
		t.Errorf("plain output %q, want %q", buf.String(), want)
	}
}
