package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// GCResult says what a GC removed and what the store holds after it.
type GCResult struct {
	RemovedImages []string // IDs
	RemovedLayers int
	FreedBytes    int64
	Bytes         int64 // the store's size after GC
}

// GC removes images that are not in use, least recently used first, until
// the store is within Options.MaxBytes (if set), then every layer and blob
// that no image, container or pull in progress refers to. Images in use
// by a container stay even if the store is over its cap.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	return s.gc(ctx, s.opts.MaxBytes)
}

// Size returns the bytes the store's layers and blobs take.
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.locked(func() error {
		layers, blobs, err := s.onDisk()
		if err != nil {
			return err
		}
		for _, v := range layers {
			n += v
		}
		for _, v := range blobs {
			n += v
		}
		return nil
	})
	return n, err
}

// onDisk returns the layers (diff ID → size) and blobs (digest → size).
func (s *Store) onDisk() (map[string]int64, map[string]int64, error) {
	layers := map[string]int64{}
	ents, err := os.ReadDir(filepath.Join(s.root, "layers", "sha256"))
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		id := "sha256:" + e.Name()
		var size int64
		if m, err := s.layerMeta(id); err == nil {
			size = m.Size
		}
		layers[id] = size
	}
	blobs := map[string]int64{}
	ents, err = os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	if err != nil {
		return nil, nil, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // atomicfile's temporary files
		}
		if fi, err := e.Info(); err == nil {
			blobs["sha256:"+e.Name()] = fi.Size()
		}
	}
	return layers, blobs, nil
}

// leasedLayers returns the layers pulls in progress need, and removes the
// leases (and temporary directories) of pulls that died.
func (s *Store) leasedLayers() (map[string]bool, error) {
	out := map[string]bool{}
	tmp := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok {
			continue
		}
		p := filepath.Join(tmp, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			// Nobody holds it: its pull is gone.
			os.Remove(p)
			syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
			continue
		}
		b, _ := os.ReadFile(p)
		f.Close()
		live[id] = true
		for _, l := range strings.Fields(string(b)) {
			out[l] = true
		}
	}
	for _, e := range ents {
		if e.IsDir() && !live[e.Name()] {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
	return out, nil
}

func (s *Store) gc(ctx context.Context, maxBytes int64) (GCResult, error) {
	var res GCResult
	err := s.locked(func() error {
		ix, err := s.readIndex()
		if err != nil {
			return err
		}
		inUse, err := s.containersUsing()
		if err != nil {
			return err
		}
		leased, err := s.leasedLayers()
		if err != nil {
			return err
		}
		layers, blobs, err := s.onDisk()
		if err != nil {
			return err
		}
		removeImage := func(id string) {
			delete(ix.Images, id)
			for n, t := range ix.Tags {
				if t == id {
					delete(ix.Tags, n)
				}
			}
			res.RemovedImages = append(res.RemovedImages, id)
		}
		// Images removed while in use go once released.
		for id, img := range ix.Images {
			if img.Removed && !inUse[id] {
				removeImage(id)
			}
		}
		// size is what the store will hold once unreferenced files go.
		size := func() int64 {
			keep := map[string]bool{}
			var n int64
			for id, img := range ix.Images {
				n += blobs[id] + blobs[img.RepoDigest]
				for _, l := range img.Layers {
					keep[l] = true
				}
			}
			for l := range leased {
				keep[l] = true
			}
			for l := range keep {
				n += layers[l]
			}
			return n
		}
		if maxBytes > 0 {
			var cand []*Image
			for id, img := range ix.Images {
				if !inUse[id] {
					cand = append(cand, img)
				}
			}
			sort.Slice(cand, func(i, j int) bool {
				if !cand[i].LastUsed.Equal(cand[j].LastUsed) {
					return cand[i].LastUsed.Before(cand[j].LastUsed)
				}
				return cand[i].ID < cand[j].ID
			})
			for _, img := range cand {
				if ctx.Err() != nil || size() <= maxBytes {
					break
				}
				removeImage(img.ID)
			}
		}
		if err := s.writeIndex(ix); err != nil {
			return err
		}
		keepLayers := map[string]bool{}
		keepBlobs := map[string]bool{}
		for id, img := range ix.Images {
			keepBlobs[id] = true
			keepBlobs[img.RepoDigest] = true
			for _, l := range img.Layers {
				keepLayers[l] = true
			}
		}
		var errs []error
		for l, n := range layers {
			if keepLayers[l] || leased[l] {
				res.Bytes += n
				continue
			}
			dir, err := s.layerDir(l)
			if err != nil {
				continue
			}
			// Rename first, so a half-removed layer is never taken as whole.
			trash := filepath.Join(s.root, "tmp", "gc-"+strings.TrimPrefix(l, "sha256:"))
			if err := os.Rename(dir, trash); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := os.RemoveAll(trash); err != nil {
				errs = append(errs, err)
			}
			res.RemovedLayers++
			res.FreedBytes += n
		}
		for b, n := range blobs {
			if keepBlobs[b] {
				res.Bytes += n
				continue
			}
			if p, err := s.blobPath(b); err == nil {
				if err := os.Remove(p); err != nil {
					errs = append(errs, err)
				}
				res.FreedBytes += n
			}
		}
		return errors.Join(errs...)
	})
	return res, err
}
