package agent

import (
	"errors"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// maxRead caps one /files/read answer, like Mesos' default page.
const maxRead = 16 << 20

var errForbidden = errors.New("path is outside the sandboxes")

// resolve maps a requested path to a real file inside one sandbox. Paths are
// absolute host paths, as Mesos serves them (the sandbox "directory" in
// /state). Under a run directory the real target must stay inside that
// sandbox, whatever `..` or symlinks say; nothing above a run directory is
// served.
func (a *Agent) resolve(requested string) (string, error) {
	if requested == "" || !filepath.IsAbs(requested) || strings.ContainsRune(requested, 0) {
		return "", errors.New("path must be absolute")
	}
	clean := filepath.Clean(requested)
	root, err := filepath.EvalSymlinks(filepath.Join(a.cfg.WorkDir, "slaves"))
	if err != nil {
		return "", os.ErrNotExist
	}
	rel, err := filepath.Rel(filepath.Join(a.cfg.WorkDir, "slaves"), clean)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errForbidden
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return "", os.ErrNotExist
	}
	parts := strings.Split(rel, "/")
	// slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/...
	if len(parts) >= 7 && parts[1] == "frameworks" && parts[3] == "executors" && parts[5] == "runs" {
		sandbox, err := filepath.EvalSymlinks(filepath.Join(append([]string{root}, parts[:7]...)...))
		if err != nil {
			return "", os.ErrNotExist
		}
		if !within(sandbox, root) {
			return "", errForbidden
		}
		if !within(real, sandbox) {
			return "", errForbidden
		}
		return real, nil
	}
	return "", errForbidden
}

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func filesError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errForbidden):
		http.Error(w, err.Error(), http.StatusForbidden)
	case errors.Is(err, os.ErrNotExist):
		http.Error(w, "No such file or directory", http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
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
	real, err := a.resolve(requested)
	if err != nil {
		filesError(w, err)
		return
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		filesError(w, err)
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
	real, err := a.resolve(r.URL.Query().Get("path"))
	if err != nil {
		filesError(w, err)
		return nil, nil, false
	}
	f, err := os.Open(real)
	if err != nil {
		filesError(w, err)
		return nil, nil, false
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		http.Error(w, "Cannot read a directory", http.StatusBadRequest)
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
		filesError(w, err)
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
