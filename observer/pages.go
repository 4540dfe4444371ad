package observer

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// pages are parsed once: each page's template with the layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"index", "task", "process", "tail", "browse", "error"} {
		out[name] = template.Must(template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}()

// csp lets pages run our own script and fetch our own JSON, nothing else.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type crumb struct{ Text, Href string }

// page is what the layout needs; each page embeds it.
type page struct {
	Title  string
	Host   string
	Now    string
	Crumbs []crumb
}

func (o *Observer) page(title string, crumbs ...crumb) page {
	return page{Title: title, Host: o.cfg.Hostname, Now: fmtTime(o.cfg.Now()), Crumbs: crumbs}
}

func (o *Observer) render(w http.ResponseWriter, code int, name string, data any) {
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, "layout", data); err != nil {
		o.cfg.Logger.Error("rendering a page", "page", name, "err", err)
		text(w, http.StatusInternalServerError, "cannot render the page\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

func (o *Observer) notFound(w http.ResponseWriter, r *http.Request, msg string) {
	if jsonPath(r) {
		writeJSON(w, http.StatusNotFound, observerapi.Error{Error: msg})
		return
	}
	o.render(w, http.StatusNotFound, "error", struct {
		page
		Code    int
		Message string
	}{o.page("Not found"), http.StatusNotFound, msg})
}

func serveAsset(w http.ResponseWriter, r *http.Request, args []string) {
	name, ok := arg(args[0])
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(assetFS, "assets/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(b)
}

// Formatting.

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (o *Observer) fmtAgo(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := o.cfg.Now().Sub(t)
	if d < 0 {
		return fmtTime(t)
	}
	return fmtTime(t) + " (" + fmtDuration(d) + " ago)"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func fmtCPU(rate float64) string { return fmt.Sprintf("%.1f%%", rate*100) }

// href joins escaped path segments.
func href(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// sandboxHref is route/<task>/<sandbox path>.
func sandboxHref(route, taskID, rel string) string {
	segs := []string{route, taskID}
	if rel != "." && rel != "" {
		segs = append(segs, strings.Split(rel, "/")...)
	}
	return href(segs...)
}

func stateClass(s string) string { return strings.ToLower(s) }

// The index.

type taskRow struct {
	ID, Href, Name, Role, Launched, State, Class, Since, CPU, RAM, Disk string
}

type section struct {
	Title      string
	Count      int
	Rows       []taskRow
	Prev, Next string
}

func (o *Observer) rows(tasks []*task) []taskRow {
	out := []taskRow{}
	for _, t := range tasks {
		j := o.taskRow(t)
		state, since, launched := t.stateTimes()
		r := taskRow{ID: t.ID, Href: href("task", t.ID), Name: j.Name, Role: j.Role, Launched: fmtTime(launched),
			State: state.String(), Class: stateClass(state.String()), Since: o.fmtAgo(since), Disk: fmtBytes(j.Disk)}
		if j.Source != "" {
			r.CPU, r.RAM = fmtCPU(j.CPU), fmtBytes(j.RAM)
		}
		out = append(out, r)
	}
	return out
}

func (o *Observer) section(which string, offset, num int) section {
	tasks := o.list(which)
	pageTasks, offset := paginate(tasks, offset, num)
	s := section{Title: map[string]string{"active": "Active tasks", "finished": "Finished tasks", "all": "All tasks"}[which],
		Count: len(tasks), Rows: o.rows(pageTasks)}
	if offset > 0 {
		s.Prev = href("main", which, strconv.Itoa(max(0, offset-num)), strconv.Itoa(num))
	}
	if offset+num < len(tasks) {
		s.Next = href("main", which, strconv.Itoa(offset+num), strconv.Itoa(num))
	}
	return s
}

type indexPage struct {
	page
	Sections []section
}

func (o *Observer) serveIndex(w http.ResponseWriter, r *http.Request, _ []string) {
	o.render(w, http.StatusOK, "index", indexPage{o.page("Tasks"), []section{o.section("active", 0, 100), o.section("finished", 0, 50)}})
}

func (o *Observer) serveMain(w http.ResponseWriter, r *http.Request, args []string) {
	for i := range args {
		var ok bool
		if args[i], ok = arg(args[i]); !ok {
			o.notFound(w, r, "No such page")
			return
		}
	}
	which, offset, num, ok := listArgs(args)
	if !ok {
		o.notFound(w, r, "No such task type")
		return
	}
	o.render(w, http.StatusOK, "index", indexPage{o.page("Tasks"), []section{o.section(which, offset, num)}})
}

// The task page.

type portRow struct {
	Name string
	Port int
}

type historyRow struct{ State, Class, Time string }

type processRow struct {
	Name, Href, State, Class string
	Run                      string
	Started, Ended, Exit     string
	CPU, RAM                 string
	Stdout, Stderr           string
}

type taskPage struct {
	page
	ID, Name, User, Hostname, State, Class, Launched, Since string
	Ports                                                   []portRow
	Sandbox, BrowseHref, RawHref                            string
	AgentID, FrameworkID, ExecutorID, ContainerID           string
	Usage                                                   observerapi.TaskUsage
	CPU, RAM, Disk                                          string
	History                                                 []historyRow
	Processes                                               []processRow
	ReplayError                                             string
}

func exitText(code *int) string {
	if code == nil {
		return ""
	}
	return strconv.Itoa(*code)
}

func (o *Observer) serveTask(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	state, since, launched := t.stateTimes()
	p := taskPage{
		page: o.page("Task "+t.ID, crumb{t.ID, href("task", t.ID)}),
		ID:   t.ID, Name: t.Header.Task.Name, User: t.Header.User, Hostname: t.Header.Hostname,
		State: state.String(), Class: stateClass(state.String()), Launched: fmtTime(launched), Since: o.fmtAgo(since),
		Sandbox: t.sandboxPath(), BrowseHref: href("browse", t.ID), RawHref: href("rawtask", t.ID),
		AgentID: t.AgentID, FrameworkID: t.FrameworkID, ExecutorID: t.ExecutorID, ContainerID: t.ContainerID,
		Usage: o.usage.taskUsage(t, o.cfg.DiskInterval), ReplayError: t.ReplayError,
	}
	// No link to a sandbox that is not there (not made yet, or removed).
	if root, err := t.sandbox(); err == nil {
		root.Close()
	} else {
		p.BrowseHref = ""
	}
	p.Disk = fmtBytes(p.Usage.Disk)
	if p.Usage.Source != "" {
		p.CPU, p.RAM = fmtCPU(p.Usage.CPU), fmtBytes(p.Usage.RAM)
	}
	for name, port := range t.Header.Ports {
		p.Ports = append(p.Ports, portRow{name, port})
	}
	sort.Slice(p.Ports, func(i, j int) bool { return p.Ports[i].Name < p.Ports[j].Name })
	for _, s := range t.Snapshot.Statuses {
		p.History = append(p.History, historyRow{s.State.String(), stateClass(s.State.String()), fmtTime(s.Time)})
	}
	for _, ps := range t.Snapshot.Processes {
		row := processRow{Name: ps.Name, Href: href("process", t.ID, ps.Name), State: strings.ToUpper(category(ps))}
		if run, ok := t.run(ps.Name, -1); ok {
			row.State = run.State.String()
			row.Run = strconv.Itoa(run.Run)
			row.Started, row.Ended, row.Exit = fmtTime(run.StartTime), fmtTime(run.StopTime), exitText(run.ExitCode)
			row.Stdout = href("logs", t.ID, ps.Name, strconv.Itoa(run.Run), "stdout")
			row.Stderr = href("logs", t.ID, ps.Name, strconv.Itoa(run.Run), "stderr")
			if t.Active {
				if u, ok := o.usage.runUsage(t, ps.Name, run); ok {
					row.CPU, row.RAM = fmtCPU(u.CPU), fmtBytes(u.RAM)
				}
			}
		}
		row.Class = stateClass(row.State)
		p.Processes = append(p.Processes, row)
	}
	o.render(w, http.StatusOK, "task", p)
}

// The process page.

type runRow struct {
	Run                                    int
	State, Class                           string
	Forked, Started, Ended, Duration, Exit string
	CPU, RAM                               string
	Stdout, Stderr                         string
}

type processPage struct {
	page
	TaskID, TaskHref, Name, State, Class, Cmdline string
	Successes, Failures, Losses                   int
	Runs                                          []runRow
}

func (o *Observer) serveProcess(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	name, ok := arg(args[1])
	ps, found := t.process(name)
	if !ok || !found {
		o.notFound(w, r, "No such process")
		return
	}
	p := processPage{
		page:   o.page("Process "+name, crumb{t.ID, href("task", t.ID)}, crumb{name, href("process", t.ID, name)}),
		TaskID: t.ID, TaskHref: href("task", t.ID), Name: name, State: ps.State.String(), Class: stateClass(ps.State.String()),
		Successes: ps.Successes, Failures: ps.Failures, Losses: ps.Losses,
	}
	for _, hp := range t.Header.Task.Processes {
		if hp.Name == name {
			p.Cmdline = hp.Cmdline
		}
	}
	for i := len(ps.Runs) - 1; i >= 0; i-- {
		run := ps.Runs[i]
		row := runRow{Run: run.Run, State: run.State.String(), Class: stateClass(run.State.String()),
			Forked: fmtTime(run.ForkTime), Started: fmtTime(run.StartTime), Ended: fmtTime(run.StopTime), Exit: exitText(run.ExitCode),
			Stdout: href("logs", t.ID, name, strconv.Itoa(run.Run), "stdout"), Stderr: href("logs", t.ID, name, strconv.Itoa(run.Run), "stderr")}
		if !run.StartTime.IsZero() {
			end := run.StopTime
			if end.IsZero() && (run.State == planner.Running || run.State == planner.Forked) {
				end = o.cfg.Now()
			}
			if !end.IsZero() && !end.Before(run.StartTime) {
				row.Duration = fmtDuration(end.Sub(run.StartTime))
			}
		}
		if t.Active {
			if u, ok := o.usage.runUsage(t, name, run); ok {
				row.CPU, row.RAM = fmtCPU(u.CPU), fmtBytes(u.RAM)
			}
		}
		p.Runs = append(p.Runs, row)
	}
	o.render(w, http.StatusOK, "process", p)
}

// The live viewers.

type tailPage struct {
	page
	Heading                         string
	DataHref, RawHref, DownloadHref string
}

func (o *Observer) serveLogs(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	f, _, rel, err := o.logFile(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	f.Close()
	process, run, kind := path.Base(path.Dir(path.Dir(rel))), path.Base(path.Dir(rel)), path.Base(rel)
	o.render(w, http.StatusOK, "tail", tailPage{
		page: o.page(kind+" of "+process+"/"+run, crumb{t.ID, href("task", t.ID)}, crumb{process, href("process", t.ID, process)},
			crumb{"run " + run + " " + kind, href("logs", t.ID, process, run, kind)}),
		Heading:  fmt.Sprintf("%s of %s, run %s", kind, process, run),
		DataHref: href("logdata", t.ID, process, run, kind), RawHref: sandboxHref("file", t.ID, rel) + "?raw=1",
		DownloadHref: sandboxHref("download", t.ID, rel),
	})
}

// serveFile is the file viewer, or with ?raw=1 the file as text/plain.
func (o *Observer) serveFile(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	f, fi, rel, err := o.sandboxFile(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	if r.URL.Query().Get("raw") == "1" {
		serveContent(w, r, f, fi, "text/plain; charset=utf-8", "inline")
		return
	}
	f.Close()
	o.render(w, http.StatusOK, "tail", tailPage{
		page:     o.page(rel, crumb{t.ID, href("task", t.ID)}, crumb{"sandbox", href("browse", t.ID)}, crumb{rel, sandboxHref("file", t.ID, rel)}),
		Heading:  rel,
		DataHref: sandboxHref("filedata", t.ID, rel), RawHref: sandboxHref("file", t.ID, rel) + "?raw=1",
		DownloadHref: sandboxHref("download", t.ID, rel),
	})
}

// The sandbox browser.

type entryRow struct {
	Name, Href, Download, Mode, Size, Mtime string
	Dir, Outside                            bool
}

type browsePage struct {
	page
	TaskID, TaskHref string
	Parts            []crumb
	Entries          []entryRow
	Truncated        bool
}

func (o *Observer) serveBrowse(w http.ResponseWriter, r *http.Request, args []string) {
	t := o.lookup(w, r, args[0])
	if t == nil {
		return
	}
	l, err := o.listing(t, args[1:])
	if err != nil {
		o.fileError(w, r, err)
		return
	}
	p := browsePage{page: o.page("Sandbox of "+t.ID, crumb{t.ID, href("task", t.ID)}, crumb{"sandbox", href("browse", t.ID)}),
		TaskID: t.ID, TaskHref: href("task", t.ID), Truncated: l.Truncated}
	p.Parts = append(p.Parts, crumb{"sandbox", href("browse", t.ID)})
	if l.Path != "" {
		segs := strings.Split(l.Path, "/")
		for i := range segs {
			p.Parts = append(p.Parts, crumb{segs[i], sandboxHref("browse", t.ID, relPath(segs[:i+1]))})
		}
	}
	for _, e := range l.Entries {
		row := entryRow{Name: e.Name, Mode: e.Mode, Size: fmtBytes(e.Size), Mtime: fmtTime(fromSecs(e.Mtime)), Dir: e.IsDir(), Outside: e.Outside()}
		switch {
		case e.IsDir():
			row.Href, row.Size = sandboxHref("browse", t.ID, e.Path), ""
		case e.IsFile():
			row.Href = sandboxHref("file", t.ID, e.Path)
			row.Download = sandboxHref("download", t.ID, e.Path)
		}
		p.Entries = append(p.Entries, row)
	}
	o.render(w, http.StatusOK, "browse", p)
}
