// Package ui is the scheduler's web UI: server-rendered HTML pages at
// Aurora's UI paths (/scheduler, /scheduler/<role>[/<env>[/<job>[/<instance>
// | /task/<taskId> | /update/<id>]]], /updates) and a cron jobs page of our
// own (/cronjobs), read from a Source (the scheduler) on each request.
// Where Aurora serves a single-page JavaScript application that calls
// /api, this package renders the same information with html/template,
// which escapes every name, message and configuration string.
//
// The pages carry stable markers for browser tests: <body data-page="...">,
// a row per task <tr class="task" data-instance="N" data-status="S"> in the
// active tables (<tr class="completed-task" ...> for terminal tasks), a row
// per update <tr class="update" data-update-id="ID" data-status="S"> and
// per updated instance <tr class="update-instance" data-instance="N"
// data-action="A">, and ids on the tables (see the templates).
package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// Source is what the UI reads; the scheduler implements it.
type Source interface {
	// Cluster is the cluster's name, shown in every page's header.
	Cluster() string
	// Jobs returns the role's job configurations ("" = all roles).
	Jobs(role string) []api.JobConfiguration
	// JobSummaries returns the role's jobs with their task counts.
	JobSummaries(role string) []api.JobSummary
	// Tasks returns the tasks q selects, sorted by job, instance and task id.
	Tasks(q api.TaskQuery) []api.ScheduledTask
	// JobUpdateSummaries returns the job updates q selects, newest first.
	JobUpdateSummaries(q api.JobUpdateQuery) ([]api.JobUpdateSummary, error)
	// UpdateDetails returns a job update with its events; false if there
	// is none.
	UpdateDetails(key api.JobUpdateKey) (api.JobUpdateDetails, bool)
}

// PendingReasonSource is a Source that can say why PENDING tasks are not
// placed (getPendingReason); the scheduler is one. Task rows then show the
// reason next to a PENDING status, as Aurora's UI did.
type PendingReasonSource interface {
	PendingReasons(q api.TaskQuery) ([]api.PendingReason, error)
}

// Config adjusts the UI.
type Config struct {
	// ObserverURL returns the base URL of the Thermos observer on an agent
	// host (e.g. http://host:1338), or "" when there is none. Task rows
	// link to <observer>/task/<taskId>. Nil means no observer links.
	ObserverURL func(slaveHost string) string
	// Now is the clock relative ages ("3m ago") are computed from; nil
	// means time.Now.
	Now func() time.Time
}

// Handler serves the UI's pages (GET and HEAD only; other methods get 405):
//
//	/scheduler                                    roles and their job counts
//	/scheduler/<role>                             the role's jobs by environment
//	/scheduler/<role>/<env>                       the role's jobs in one environment
//	/scheduler/<role>/<env>/<job>                 the job: config, active and completed tasks
//	/scheduler/<role>/<env>/<job>/<instance>      the instance's tasks
//	/scheduler/<role>/<env>/<job>/task/<taskId>   one task: fields, history, executor config
//	/scheduler/<role>/<env>/<job>/update/<id>     one job update: progress per instance, settings,
//	                                              old and new configuration, events
//	/updates                                      job updates, in progress and completed
//	/cronjobs                                     cron jobs: schedule, policy, next and last run
//	                                              (when the Source is also a CronSource)
//
// A trailing slash is ignored. Names in the path must match Aurora's
// identifier rule (a bad one is a 400 page); an unknown job, instance, task
// or path is a 404 page.
func Handler(src Source, cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &handler{src: src, cfg: cfg}
}

type handler struct {
	src Source
	cfg Config
}

//go:embed templates/*.html
var templateFiles embed.FS

// templates holds one template set per page template (the layout with the
// page's "content"), by the page file's name.
var templates = func() map[string]*template.Template {
	base := template.Must(template.New("layout.html").ParseFS(templateFiles, "templates/layout.html"))
	m := map[string]*template.Template{}
	for _, name := range []string{"roles", "jobs", "job", "instance", "task", "updates", "update", "cron", "error"} {
		m[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+name+".html"))
	}
	return m
}()

// page is what the layout renders.
type page struct {
	Cluster  string
	Kind     string // <body data-page>: roles, role, environment, job, instance, task, updates, update, cron, error
	template string // which templates entry renders Data
	Heading  string
	Crumbs   []crumb
	Data     any
}

// crumb is one step of the breadcrumbs; the last has no link.
type crumb struct{ Label, Href string }

// httpError is a request the UI answers with an error page.
type httpError struct {
	Code    int
	Message string
}

func (e *httpError) Error() string { return e.Message }

func (e *httpError) Title() string { return http.StatusText(e.Code) }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.fail(w, r, errorf(http.StatusMethodNotAllowed, "The method %s is not allowed: the scheduler's pages are only read, with GET.", r.Method))
		return
	}
	p := r.URL.EscapedPath()
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	var pg *page
	var err *httpError
	switch {
	case p == "/updates":
		pg = h.updates()
	case p == "/cronjobs":
		pg, err = h.cronJobs()
	case p == "/scheduler":
		pg = h.roles()
	case strings.HasPrefix(p, "/scheduler/"):
		pg, err = h.scheduler(strings.Split(strings.TrimPrefix(p, "/scheduler/"), "/"))
	default:
		err = errorf(http.StatusNotFound, "There is no page at %s.", r.URL.Path)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, pg)
}

// goodIdentifier is Aurora's GOOD_IDENTIFIER_PATTERN, which roles,
// environments and job names (and our task ids) match.
var goodIdentifier = regexp.MustCompile(`^[\w\-\.]+$`)

// maxIdentifierLength is Aurora's MAX_IDENTIFIER_LENGTH.
const maxIdentifierLength = 255

// segment unescapes a path segment and checks it is an identifier.
func segment(what, escaped string) (string, *httpError) {
	s, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errorf(http.StatusBadRequest, "Bad %s %q in the path: %v.", what, escaped, err)
	}
	if s == "" {
		return "", errorf(http.StatusBadRequest, "The %s in the path is empty.", what)
	}
	if len(s) > maxIdentifierLength || !goodIdentifier.MatchString(s) {
		return "", errorf(http.StatusBadRequest, "Bad %s %q: names are 1 to %d letters, digits, '_', '-' and '.'.", what, s, maxIdentifierLength)
	}
	return s, nil
}

// scheduler routes the segments after /scheduler/.
func (h *handler) scheduler(segs []string) (*page, *httpError) {
	var names [3]string
	for i, what := range []string{"role", "environment", "job name"} {
		if i >= len(segs) {
			break
		}
		s, err := segment(what, segs[i])
		if err != nil {
			return nil, err
		}
		names[i] = s
	}
	key := api.JobKey{Role: names[0], Environment: names[1], Name: names[2]}
	switch len(segs) {
	case 1:
		return h.role(key.Role, ""), nil
	case 2:
		return h.role(key.Role, key.Environment), nil
	case 3:
		return h.job(key)
	case 4:
		switch segs[3] {
		case "task", "update":
			return nil, errorf(http.StatusNotFound, "The path names no %s: use /scheduler/%s/%s.", segs[3], key, segs[3]+"/<id>")
		}
		inst, err := instanceID(segs[3])
		if err != nil {
			return nil, err
		}
		return h.instance(key, inst)
	case 5:
		switch segs[3] {
		case "task":
			id, err := segment("task id", segs[4])
			if err != nil {
				return nil, err
			}
			return h.task(key, id)
		case "update":
			id, err := segment("update id", segs[4])
			if err != nil {
				return nil, err
			}
			return h.update(key, id)
		}
	}
	return nil, errorf(http.StatusNotFound, "There is no page at /scheduler/%s.", strings.Join(segs, "/"))
}

// instanceID parses an instance id: decimal digits only.
func instanceID(s string) (int, *httpError) {
	ok := s != "" && len(s) <= 9
	for _, c := range s {
		ok = ok && c >= '0' && c <= '9'
	}
	if !ok {
		return 0, errorf(http.StatusBadRequest, "Bad instance id %q: it must be a number.", s)
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, e *httpError) {
	h.render(w, r, e.Code, &page{
		Cluster:  h.src.Cluster(),
		Kind:     "error",
		template: "error",
		Heading:  fmt.Sprintf("%d %s", e.Code, e.Title()),
		Crumbs:   []crumb{{Label: h.src.Cluster(), Href: "/scheduler"}, {Label: e.Title()}},
		Data:     e,
	})
}

// render writes the page (only its headers for HEAD).
func (h *handler) render(w http.ResponseWriter, r *http.Request, code int, p *page) {
	var buf bytes.Buffer
	if err := templates[p.template].ExecuteTemplate(&buf, "layout", p); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}
