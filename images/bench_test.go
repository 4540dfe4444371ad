package images

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BenchmarkPullCold pulls a busybox image (two layers) from the
// in-process registry on 127.0.0.1 into an empty store each iteration.
func BenchmarkPullCold(b *testing.B) {
	reg := newRegistry(b)
	ref := reg.push(b, "bench/busybox:v1", image(b, v1.Config{Cmd: []string{"/bin/sh"}}, baseLayer(b), layerOf(b, file("etc/motd", "hi"))))
	dir := b.TempDir()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(filepath.Join(dir, fmt.Sprint(i)), Options{Keychain: anonymous})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Pull(ctx, ref, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareWarm prepares and releases a root filesystem from an
// image already in the store: overlayfs where it mounts, and the copy.
func BenchmarkPrepareWarm(b *testing.B) {
	reg := newRegistry(b)
	ref := reg.push(b, "bench/busybox:v1", image(b, v1.Config{Cmd: []string{"/bin/sh"}}, baseLayer(b), layerOf(b, file("etc/motd", "hi"))))
	for _, mode := range []string{"overlay", "copy"} {
		b.Run(mode, func(b *testing.B) {
			s := openStore(b, Options{NoOverlay: mode == "copy"})
			ctx := context.Background()
			if _, err := s.Pull(ctx, ref, nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := s.Prepare(ctx, ref, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if mode == "overlay" && !r.Overlay {
					b.Skip("overlayfs does not mount here")
				}
				if err := s.Release(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
