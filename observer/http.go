package observer

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

// Handler serves the observer's pages and JSON API.
func (o *Observer) Handler() http.Handler { return http.HandlerFunc(o.serve) }

// route is one path prefix; args are the raw (still escaped) segments after
// it.
type route struct {
	name string // one segment, or more joined by "/"
	min  int    // fewest args
	max  int    // most args; -1 for a sandbox path (any number)
	h    func(w http.ResponseWriter, r *http.Request, args []string)
}

func (o *Observer) routes() []route {
	return []route{
		{"", 0, 0, o.serveIndex},
		{"main", 0, 3, o.serveMain},
		{"task", 1, 1, o.serveTask},
		{"process", 2, 2, o.serveProcess},
		{"logs", 4, 4, o.serveLogs},
		{"logdata", 4, 4, o.serveLogData},
		{"browse", 1, -1, o.serveBrowse},
		{"file", 2, -1, o.serveFile},
		{"filedata", 2, -1, o.serveFileData},
		{"download", 2, -1, o.serveDownload},
		{"rawtask", 1, 1, o.serveRawTask},
		{"assets", 1, 1, serveAsset},
		{"favicon.ico", 0, 0, func(w http.ResponseWriter, r *http.Request, _ []string) { http.NotFound(w, r) }},
		{"health", 0, 0, func(w http.ResponseWriter, r *http.Request, _ []string) { text(w, http.StatusOK, "OK\n") }},
		{"vars", 0, 1, o.serveVars},
		{"vars.json", 0, 0, o.serveVarsJSON},
		{"j/browse", 1, -1, o.serveBrowseJSON},
		{"j", 1, 4, o.serveJSON},
	}
}

// unbounded are the routes that read nothing under the work dir; every
// other route reads checkpoints or a sandbox and is bounded per client by
// Config.FilesLimiter.
var unbounded = map[string]bool{"health": true, "vars": true, "vars.json": true, "assets": true, "favicon.ico": true}

// serve routes by the escaped path, split on "/", so that an encoded slash
// or dot-dot stays inside one segment and is judged there; no path cleaning
// or redirect happens on the way.
func (o *Observer) serve(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		text(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, "/") {
		text(w, http.StatusBadRequest, "bad path\n")
		return
	}
	segs := strings.Split(raw[1:], "/")
	for _, rt := range o.routes() {
		n := strings.Count(rt.name, "/") + 1
		if len(segs) < n || strings.Join(segs[:n], "/") != rt.name {
			continue
		}
		args := segs[n:]
		// A trailing slash is fine on fixed-arity routes.
		if rt.max >= 0 && len(args) > rt.min && args[len(args)-1] == "" {
			args = args[:len(args)-1]
		}
		if len(args) < rt.min || (rt.max >= 0 && len(args) > rt.max) {
			break
		}
		if !unbounded[rt.name] {
			release, code, msg := o.cfg.FilesLimiter.Acquire(r)
			if release == nil {
				h.Set("Retry-After", "1")
				text(w, code, msg+"\n")
				return
			}
			defer release()
		}
		rt.h(w, r, args)
		return
	}
	o.notFound(w, r, "No such page")
}

// arg unescapes one path segment that names something (a task id, a
// process): the same rules as a sandbox path segment.
func arg(raw string) (string, bool) {
	s, err := cleanSegments([]string{raw})
	if err != nil || len(s) != 1 {
		return "", false
	}
	return s[0], true
}

func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, s)
}

// jsonPath says r is for a JSON endpoint, whose errors are JSON too
// (observerapi.Error).
func jsonPath(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/j/") || strings.HasPrefix(p, "/logdata/") || strings.HasPrefix(p, "/filedata/")
}

// writeJSON writes v, one of package observerapi's types.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

// fileError answers a failed sandbox access as sandboxfs.Status says:
// refused paths and special files 400, escapes 403, missing files 404.
func (o *Observer) fileError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := sandboxfs.Status(err)
	switch code {
	case http.StatusNotFound:
		o.notFound(w, r, "No such file")
	case http.StatusForbidden:
		o.cfg.Logger.Debug("sandbox access refused", "path", r.URL.Path, "err", err)
		fallthrough
	default:
		if jsonPath(r) {
			writeJSON(w, code, observerapi.Error{Error: msg})
			return
		}
		text(w, code, msg+"\n")
	}
}

// lookup finds the task named by a raw segment, answering 404 itself.
func (o *Observer) lookup(w http.ResponseWriter, r *http.Request, raw string) *task {
	id, ok := arg(raw)
	var t *task
	if ok {
		t = o.task(id)
	}
	if t == nil {
		o.notFound(w, r, "Unknown task_id")
	}
	return t
}

// sandboxFile opens a regular file of the task's sandbox from raw segments.
func (o *Observer) sandboxFile(t *task, raw []string) (*os.File, fs.FileInfo, string, error) {
	segs, err := cleanSegments(raw)
	if err != nil {
		return nil, nil, "", err
	}
	if len(segs) == 0 {
		return nil, nil, "", fmt.Errorf("the sandbox: %w (a directory)", sandboxfs.ErrNotRegular)
	}
	root, err := t.sandbox()
	if err != nil {
		return nil, nil, "", err
	}
	defer root.Close()
	rel := relPath(segs)
	f, fi, err := sandboxfs.Open(root, rel, sandboxfs.File)
	return f, fi, rel, err
}

// logFile opens a run's log; process, run and kind are checked against the
// checkpoint before the sandbox is touched.
func (o *Observer) logFile(t *task, args []string) (*os.File, fs.FileInfo, string, error) {
	process, ok1 := arg(args[0])
	run, err := strconv.Atoi(args[1])
	kind := args[2]
	if !ok1 || err != nil || (kind != "stdout" && kind != "stderr") {
		return nil, nil, "", errBadPath
	}
	if _, ok := t.run(process, run); !ok {
		return nil, nil, "", fs.ErrNotExist
	}
	return o.sandboxFile(t, []string{".logs", url.PathEscape(process), strconv.Itoa(run), kind})
}

// offsetLength parses ?offset=&length= (default -1 each).
func offsetLength(r *http.Request) (offset, length int64, ok bool) {
	parse := func(name string) (int64, bool) {
		s := r.URL.Query().Get(name)
		if s == "" {
			return -1, true
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil && v >= -1
	}
	offset, ok1 := parse("offset")
	length, ok2 := parse("length")
	return offset, length, ok1 && ok2
}

func (o *Observer) serveChunk(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
	defer f.Close()
	offset, length, ok := offsetLength(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, observerapi.Error{Error: "offset and length must be integers >= -1"})
		return
	}
	at, data, err := readChunk(f, fi.Size(), offset, length, o.cfg.MaxChunk)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, observerapi.Error{Error: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	writeChunk(w, at, data)
}

func (o *Observer) serveLogData(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	f, fi, _, err := o.logFile(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	o.serveChunk(w, r, f, fi)
}

func (o *Observer) serveFileData(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	f, fi, _, err := o.sandboxFile(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	o.serveChunk(w, r, f, fi)
}

// serveContent streams f (ranges allowed) as ctype, never sniffed.
func serveContent(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo, ctype, disposition string) {
	defer f.Close()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", disposition+"; filename="+strconv.Quote(fi.Name()))
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (o *Observer) serveDownload(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	f, fi, _, err := o.sandboxFile(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	serveContent(w, r, f, fi, "application/octet-stream", "attachment")
}

func (o *Observer) serveRawTask(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	cfg := t.Config
	if cfg == nil {
		cfg, _ = json.Marshal(t.Header.Task)
	}
	writeJSON(w, http.StatusOK, cfg)
}

// listing lists the sandbox directory that raw (escaped segments) names:
// the one code path of /browse and /j/browse, so both list the same
// entries with the same confinement.
func (o *Observer) listing(t *task, raw []string) (observerapi.Listing, error) {
	segs, err := cleanSegments(raw)
	if err != nil {
		return observerapi.Listing{}, err
	}
	root, err := t.sandbox()
	if err != nil {
		return observerapi.Listing{}, err
	}
	defer root.Close()
	entries, truncated, err := listDir(root, relPath(segs))
	if err != nil {
		return observerapi.Listing{}, err
	}
	return observerapi.Listing{TaskID: t.ID, Path: strings.Join(segs, "/"), Entries: entries, Truncated: truncated}, nil
}

// serveBrowseJSON is /j/browse/<task_id>[/<path>].
func (o *Observer) serveBrowseJSON(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	l, err := o.listing(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

// serveJSON is /j/...
func (o *Observer) serveJSON(w http.ResponseWriter, r *http.Request, args []string) {
	var ok bool
	for i := range args {
		if args[i], ok = arg(args[i]); !ok {
			writeJSON(w, http.StatusBadRequest, observerapi.Error{Error: "bad path"})
			return
		}
	}
	n := len(args)
	switch {
	case args[0] == "task_ids" && n <= 4:
		which, offset, num, ok := listArgs(args[1:])
		if !ok {
			writeJSON(w, http.StatusBadRequest, observerapi.Error{Error: "want /j/task_ids[/active|finished|all[/offset[/num]]]"})
			return
		}
		tasks := o.list(which)
		page, offset := paginate(tasks, offset, num)
		out := observerapi.TaskIDs{Tasks: []observerapi.TaskRow{}, Type: which, Offset: offset, Num: num, TaskCount: len(tasks)}
		for _, t := range page {
			out.Tasks = append(out.Tasks, o.taskRow(t))
		}
		writeJSON(w, http.StatusOK, out)
	case args[0] == "task_id_count" && n == 1:
		a, f := o.counts()
		writeJSON(w, http.StatusOK, observerapi.TaskIDCount{Active: a, All: a + f, Finished: f})
	case args[0] == "task" && n == 1, args[0] == "task" && n == 2:
		ids := idList(r)
		if n == 2 {
			ids = []string{args[1]}
		}
		out := map[string]observerapi.Task{}
		for _, id := range ids {
			if t := o.task(id); t != nil {
				out[id] = o.taskJSON(t)
			}
		}
		if n == 2 && len(out) == 0 {
			writeJSON(w, http.StatusNotFound, out)
			return
		}
		writeJSON(w, http.StatusOK, out)
	case args[0] == "processes" && n == 1:
		out := map[string]map[string]observerapi.Run{}
		for _, id := range idList(r) {
			if t := o.task(id); t != nil {
				out[id] = o.processesJSON(t)
			}
		}
		writeJSON(w, http.StatusOK, out)
	case args[0] == "process" && n >= 2:
		t := o.task(args[1])
		if t == nil {
			writeJSON(w, http.StatusNotFound, map[string]observerapi.Run{})
			return
		}
		if n == 2 {
			writeJSON(w, http.StatusOK, o.processesJSON(t))
			return
		}
		run := -1
		if n == 4 {
			v, err := strconv.Atoi(args[3])
			if err != nil || v < 0 {
				writeJSON(w, http.StatusBadRequest, observerapi.Error{Error: "bad run"})
				return
			}
			run = v
		}
		rs, ok := t.run(args[2], run)
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]observerapi.Run{})
			return
		}
		writeJSON(w, http.StatusOK, o.runJSON(t, args[2], rs))
	default:
		writeJSON(w, http.StatusNotFound, observerapi.Error{Error: "no such API"})
	}
}

// idList is ?task_id=a,b.
func idList(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()["task_id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); validName(id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// listArgs parses [type[/offset[/num]]] (defaults all, 0, 20).
func listArgs(args []string) (which string, offset, num int, ok bool) {
	which, offset, num = "all", 0, 20
	if len(args) > 0 {
		which = args[0]
	}
	if which != "all" && which != "active" && which != "finished" {
		return "", 0, 0, false
	}
	var err error
	if len(args) > 1 {
		if offset, err = strconv.Atoi(args[1]); err != nil {
			return "", 0, 0, false
		}
	}
	if len(args) > 2 {
		if num, err = strconv.Atoi(args[2]); err != nil || num < 0 {
			return "", 0, 0, false
		}
	}
	return which, offset, min(num, 1000), true
}

// paginate takes num tasks from offset; a negative offset counts from the
// end, as Thermos's does.
func paginate(tasks []*task, offset, num int) ([]*task, int) {
	if offset < 0 {
		offset = max(0, len(tasks)+offset)
	}
	if offset > len(tasks) {
		offset = len(tasks)
	}
	return tasks[offset:min(len(tasks), offset+num)], offset
}

func (o *Observer) vars() map[string]any {
	a, f := o.counts()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return map[string]any{
		"observer_uptime_secs":       int64(o.cfg.Now().Sub(o.started) / time.Second),
		"observer_tasks_active":      a,
		"observer_tasks_finished":    f,
		"observer_http_requests":     o.requests.Load(),
		"observer_checkpoint_errors": o.ckptErrs.Load(),
		"observer_scan_nanos":        o.scanDur.Load(),
		"go_goroutines":              runtime.NumGoroutine(),
		"go_heap_alloc_bytes":        ms.HeapAlloc,
	}
}

// serveVars is /vars ("name value" lines) and /vars/<name>.
func (o *Observer) serveVars(w http.ResponseWriter, r *http.Request, args []string) {
	vars := o.vars()
	if len(args) == 1 {
		v, ok := vars[args[0]]
		if !ok {
			o.notFound(w, r, "No such var")
			return
		}
		text(w, http.StatusOK, fmt.Sprintln(v))
		return
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintln(&b, k, vars[k])
	}
	text(w, http.StatusOK, b.String())
}

func (o *Observer) serveVarsJSON(w http.ResponseWriter, r *http.Request, _ []string) {
	writeJSON(w, http.StatusOK, o.vars())
}
