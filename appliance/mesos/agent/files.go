package agent

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
)

// maxRead caps one /files/read answer, like Mesos' default page.
const maxRead = 16 << 20

// open maps a requested path (an absolute host path, as Mesos serves the
// sandbox "directory" of /state) to its run directory and opens it there
// with sandboxfs: nothing above a run directory is served, and nothing
// under one can lead out of it, whatever `..`, symlinks or a task renaming
// its files in the meantime say.
func (a *Agent) open(requested string, kind sandboxfs.Kind) (*os.File, fs.FileInfo, error) {
	slaves := filepath.Join(a.cfg.WorkDir, "slaves")
	loc, err := sandboxfs.Locate(slaves, requested)
	if err != nil {
		return nil, nil, err
	}
	root, err := sandboxfs.OpenRun(slaves, loc.Run)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	return sandboxfs.Open(root, loc.Rel, kind)
}

func filesError(w http.ResponseWriter, err error) {
	code, msg := sandboxfs.Status(err)
	http.Error(w, msg, code)
}

type fileEntry struct {
	Path  string  `json:"path"`
	Nlink uint64  `json:"nlink"`
	Size  int64   `json:"size"`
	Mtime float64 `json:"mtime"`
	Mode  string  `json:"mode"`
	UID   string  `json:"uid"`
	GID   string  `json:"gid"`
}

func entryFor(path string, fi fs.FileInfo) fileEntry {
	e := fileEntry{Path: path, Size: fi.Size(), Mtime: float64(fi.ModTime().Unix()), Mode: fi.Mode().String()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Nlink = uint64(st.Nlink)
		e.UID = strconv.Itoa(int(st.Uid))
		if u, err := user.LookupId(e.UID); err == nil {
			e.UID = u.Username
		}
		e.GID = strconv.Itoa(int(st.Gid))
		if g, err := user.LookupGroupId(e.GID); err == nil {
			e.GID = g.Name
		}
	}
	return e
}

func (a *Agent) serveBrowse(w http.ResponseWriter, r *http.Request) {
	requested := r.URL.Query().Get("path")
	d, _, err := a.open(requested, sandboxfs.Dir)
	if err != nil {
		filesError(w, err)
		return
	}
	defer d.Close()
	// Entries of a directory opened beneath the sandbox are stat'ed
	// relative to it (fstatat), never by path.
	entries, err := d.ReadDir(-1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out := []fileEntry{}
	for _, de := range entries {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, entryFor(filepath.Join(filepath.Clean(requested), de.Name()), fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	mesosutil.WriteJSON(w, out)
}

func (a *Agent) openFile(w http.ResponseWriter, r *http.Request) (*os.File, fs.FileInfo, bool) {
	f, fi, err := a.open(r.URL.Query().Get("path"), sandboxfs.File)
	if err != nil {
		filesError(w, err)
		return nil, nil, false
	}
	return f, fi, true
}

// serveRead answers Mesos' /files/read: {"data": ..., "offset": N}; offset
// -1 asks for the file's length.
func (a *Agent) serveRead(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if q.Get("offset") == "" {
		offset, err = 0, nil
	}
	if err != nil || offset < -1 {
		http.Error(w, "Failed to parse offset", http.StatusBadRequest)
		return
	}
	length := int64(maxRead)
	if s := q.Get("length"); s != "" {
		if length, err = strconv.ParseInt(s, 10, 64); err != nil || length < 0 {
			http.Error(w, "Failed to parse length", http.StatusBadRequest)
			return
		}
		length = min(length, maxRead)
	}
	f, fi, ok := a.openFile(w, r)
	if !ok {
		return
	}
	defer f.Close()
	if offset == -1 {
		mesosutil.WriteJSON(w, map[string]any{"data": "", "offset": fi.Size()})
		return
	}
	buf := make([]byte, min(length, max(0, fi.Size()-offset)))
	n, err := f.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	mesosutil.WriteJSON(w, map[string]any{"data": string(buf[:n]), "offset": offset})
}

func (a *Agent) serveDownload(w http.ResponseWriter, r *http.Request) {
	f, fi, ok := a.openFile(w, r)
	if !ok {
		return
	}
	defer f.Close()
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(fi.Name()))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}
