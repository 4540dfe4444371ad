package master

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// The master's small web page: what `aurorabox up` users open at :5050 to
// see frameworks, agents and tasks, with links into task sandboxes. It is
// rendered from the same State() document the JSON endpoint serves;
// html/template escapes every name.

var uiTemplate = template.Must(template.New("ui").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Mesos master {{.Hostname}} — aurorabox</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd}
th{background:#f4f4f4}code{font-size:.9em}.muted{color:#777}
</style></head><body>
<h1>Mesos master <code>{{.PID}}</code></h1>
<p class="muted">aurorabox {{.Build}} · Mesos API {{.Version}} · {{len .Agents}} agent(s) · {{len .Frameworks}} framework(s) ·
<a href="/master/state">/master/state</a> · <a href="/metrics/snapshot">/metrics/snapshot</a> ·
<a href="/master/maintenance/schedule">maintenance schedule</a></p>
<h2>Agents</h2>
<table id="agents"><tr><th>ID</th><th>Hostname</th><th>Resources</th><th>Attributes</th><th>Active</th></tr>
{{range .Agents}}<tr><td><code>{{.ID}}</code></td><td><a href="{{.URL}}/state">{{.Hostname}}</a></td><td>{{.Resources}}</td><td>{{.Attributes}}</td><td>{{.Active}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">No agents.</td></tr>{{end}}
</table>
<h2>Frameworks</h2>
<table id="frameworks"><tr><th>ID</th><th>Name</th><th>User</th><th>Active</th><th>Tasks</th></tr>
{{range .Frameworks}}<tr><td><code>{{.ID}}</code></td><td>{{.Name}}</td><td>{{.User}}</td><td>{{.Active}}</td><td>{{len .Tasks}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">No frameworks.</td></tr>{{end}}
</table>
<h2>Tasks</h2>
<table id="tasks"><tr><th>ID</th><th>Name</th><th>State</th><th>Framework</th><th>Host</th><th>Sandbox</th></tr>
{{range .Tasks}}<tr><td><code>{{.ID}}</code></td><td>{{.Name}}</td><td>{{.State}}</td><td>{{.Framework}}</td><td>{{.Host}}</td><td>{{if .Sandbox}}<a href="{{.Sandbox}}">sandbox</a>{{end}}</td></tr>
{{else}}<tr><td colspan="6" class="muted">No tasks.</td></tr>{{end}}
</table>
</body></html>
`))

type uiAgent struct{ ID, Hostname, URL, Resources, Attributes, Active string }
type uiFramework struct {
	ID, Name, User, Active string
	Tasks                  []uiTask
}
type uiTask struct{ ID, Name, State, Framework, Host, Sandbox string }

type uiPage struct {
	Hostname, PID, Version, Build string
	Agents                        []uiAgent
	Frameworks                    []uiFramework
	Tasks                         []uiTask
}

// str renders a state value for the page: maps (resources, attributes)
// as sorted "key: value" lists.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + str(x[k])
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

func (m *Master) serveUI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	st := m.State()
	page := uiPage{Hostname: str(st["hostname"]), PID: str(st["pid"]), Version: Version, Build: m.cfg.BuildVersion}
	agentURL := map[string]string{}
	for _, s := range st["slaves"].([]map[string]any) {
		pid := str(s["pid"])
		u := ""
		if at := strings.LastIndexByte(pid, '@'); at >= 0 {
			u = "http://" + pid[at+1:]
		}
		agentURL[str(s["id"])] = u
		page.Agents = append(page.Agents, uiAgent{ID: str(s["id"]), Hostname: str(s["hostname"]), URL: u,
			Resources: str(s["resources"]), Attributes: str(s["attributes"]), Active: str(s["active"])})
	}
	for _, f := range st["frameworks"].([]map[string]any) {
		fw := uiFramework{ID: str(f["id"]), Name: str(f["name"]), User: str(f["user"]), Active: str(f["active"])}
		for _, t := range f["tasks"].([]map[string]any) {
			ex := str(t["executor_id"])
			if ex == "" {
				ex = str(t["id"]) // a command task's executor has the task's id
			}
			task := uiTask{ID: str(t["id"]), Name: str(t["name"]), State: str(t["state"]), Framework: fw.Name}
			if u := agentURL[str(t["slave_id"])]; u != "" {
				task.Host = strings.TrimPrefix(u, "http://")
				task.Sandbox = u + "/files/sandbox?" + url.Values{"framework_id": {fw.ID}, "executor_id": {ex}}.Encode()
			}
			fw.Tasks = append(fw.Tasks, task)
			page.Tasks = append(page.Tasks, task)
		}
		page.Frameworks = append(page.Frameworks, fw)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := uiTemplate.Execute(w, page); err != nil {
		m.cfg.Logger.Warn("rendering the web page", "err", err)
	}
}
