package agent

import (
	"errors"
	"fmt"
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

// errReadFailed marks an I/O error reading what was opened (an answer of
// 500), as opposed to a path refused or missing (sandboxfs.Status).
var errReadFailed = errors.New("reading the sandbox failed")

// filesStatus is the HTTP status and message of a failed browse or
// readFile.
func filesStatus(err error) (int, string) {
	if errors.Is(err, errReadFailed) {
		return http.StatusInternalServerError, err.Error()
	}
	return sandboxfs.Status(err)
}

func filesError(w http.ResponseWriter, err error) {
	code, msg := filesStatus(err)
	http.Error(w, msg, code)
}

// listed is one entry of a browsed directory: its path as requested (under
// the requested directory) and its lstat information.
type listed struct {
	path string
	info fs.FileInfo
}

// browse lists the directory at requested, sorted by path: the code path of
// /files/browse and of the v1 API's LIST_FILES.
func (a *Agent) browse(requested string) ([]listed, error) {
	d, _, err := a.open(requested, sandboxfs.Dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	// Entries of a directory opened beneath the sandbox are stat'ed
	// relative to it (fstatat), never by path.
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errReadFailed, err)
	}
	out := []listed{}
	for _, de := range entries {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, listed{filepath.Join(filepath.Clean(requested), de.Name()), fi})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out, nil
}

func (a *Agent) serveBrowse(w http.ResponseWriter, r *http.Request) {
	entries, err := a.browse(r.URL.Query().Get("path"))
	if err != nil {
		filesError(w, err)
		return
	}
	out := make([]fileEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, entryFor(e.path, e.info))
	}
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

// readFile reads at most length bytes (capped at maxRead) of the file at
// requested from offset, and tells the file's size; past the end it reads
// nothing. It is the code path of /files/read and of the v1 API's
// READ_FILE.
func (a *Agent) readFile(requested string, offset, length int64) (size int64, data []byte, err error) {
	f, fi, err := a.open(requested, sandboxfs.File)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	buf := make([]byte, max(0, min(length, maxRead, fi.Size()-offset)))
	n, err := f.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		return 0, nil, fmt.Errorf("%w: %w", errReadFailed, err)
	}
	return fi.Size(), buf[:n], nil
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
	}
	if offset == -1 {
		size, _, err := a.readFile(q.Get("path"), 0, 0)
		if err != nil {
			filesError(w, err)
			return
		}
		mesosutil.WriteJSON(w, map[string]any{"data": "", "offset": size})
		return
	}
	_, data, err := a.readFile(q.Get("path"), offset, length)
	if err != nil {
		filesError(w, err)
		return
	}
	mesosutil.WriteJSON(w, map[string]any{"data": string(data), "offset": offset})
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
