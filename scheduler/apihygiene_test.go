package scheduler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// rawPost posts body as is (chunked when length is -1) and decodes the
// answer.
func (e *env) rawPost(method string, body io.Reader, length int64) httpResult {
	e.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.url+"/api/"+method, body)
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	out := httpResult{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out.resp); err != nil {
		e.t.Fatalf("%s: HTTP %d, body %.300q: %v", method, resp.StatusCode, b, err)
	}
	return out
}

// TestAPIRequestHygiene: malformed bodies get INVALID_REQUEST messages in
// the API's terms, an oversized body gets 413 with the limit, and a huge
// number is printed as a number.
func TestAPIRequestHygiene(t *testing.T) {
	e := start(t)
	goType := regexp.MustCompile(`struct|api\.|\*|map\[|interface`)
	for _, c := range []struct {
		name, method, body, want string
	}{
		{"trailing garbage", "getJobs", `{"ownerRole":"www-data"} garbage`, "unexpected data after the JSON object"},
		{"second object", "getJobs", `{"ownerRole":"www-data"}{"ownerRole":"root"}`, "unexpected data after the JSON object"},
		{"trailing garbage, update call", "getJobUpdateSummaries", `{} x`, "unexpected data after the JSON object"},
		{"array", "getJobs", `[{"ownerRole":"www-data"}]`, "request body must be a JSON object"},
		{"string", "createJob", `"createJob"`, "request body must be a JSON object"},
		{"array, cron call", "startCronJob", `[]`, "request body must be a JSON object"},
		{"wrong parameter type", "createJob", `{"description": []}`, `parameter "description" must be an object, not an array`},
		{"wrong nested type", "getTasksStatus", `{"query": {"instanceIds": "1"}}`, `parameter "query.instanceIds" must be an array, not a string`},
		{"truncated", "getJobs", `{"ownerRole":`, "ends early"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.rawPost(c.method, strings.NewReader(c.body), int64(len(c.body)))
			msg := details(r.resp)
			if r.resp.ResponseCode != api.InvalidRequest || !strings.Contains(msg, c.want) {
				t.Fatalf("%s %q: HTTP %d %v %q; want INVALID_REQUEST saying %q", c.method, c.body, r.status, r.resp.ResponseCode, msg, c.want)
			}
			if goType.MatchString(msg) {
				t.Fatalf("message %q shows Go's types", msg)
			}
		})
	}
	t.Run("null and empty bodies are no parameters", func(t *testing.T) {
		for _, b := range []string{"", "null", " {} "} {
			if r := e.rawPost("getTierConfigs", strings.NewReader(b), int64(len(b))); r.resp.ResponseCode != api.OK {
				t.Fatalf("body %q: %v %q", b, r.resp.ResponseCode, details(r.resp))
			}
		}
	})
	for _, c := range []struct {
		name   string
		length func(n int) int64
	}{
		{"oversized body with a length", func(n int) int64 { return int64(n) }},
		{"oversized chunked body", func(int) int64 { return -1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := append([]byte(`{"ownerRole":"`), bytes.Repeat([]byte("x"), limits.APIRequestBytes)...)
			body = append(body, `"}`...)
			r := e.rawPost("getJobs", io.MultiReader(bytes.NewReader(body)), c.length(len(body)))
			if r.status != http.StatusRequestEntityTooLarge || r.resp.ResponseCode != api.InvalidRequest ||
				!strings.Contains(details(r.resp), strconv.Itoa(limits.APIRequestBytes)) {
				t.Fatalf("HTTP %d %v %q; want 413 and INVALID_REQUEST naming the %d-byte limit", r.status, r.resp.ResponseCode, details(r.resp), limits.APIRequestBytes)
			}
		})
	}
	t.Run("huge cpu", func(t *testing.T) {
		e.awaitOffer()
		j := jobConfig("hugecpu", 1, false, 1, "true")
		j.TaskConfig.Resources[0].NumCpus = ptr(1e308)
		r := e.rpc("createJob", map[string]any{"description": j})
		msg := details(r)
		if r.ResponseCode != api.InvalidRequest || !strings.Contains(msg, "1e+308") || regexp.MustCompile(`[0-9]{20}`).MatchString(msg) {
			t.Fatalf("createJob with 1e308 cpus: %v %q; want INVALID_REQUEST with 1e+308, not hundreds of digits", r.ResponseCode, msg)
		}
	})
}

// logRecorder keeps every log record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// find returns the records whose attributes include key.
func (l *logRecorder) find(key string) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.recs {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				out = append(out, r)
				return false
			}
			return true
		})
	}
	return out
}

// TestNormalKillLogsNoFailure: the executor of a killed task exits
// cleanly, and the FAILURE event Mesos sends for it is not logged as an
// agent or executor failure.
func TestNormalKillLogsNoFailure(t *testing.T) {
	rec := &logRecorder{}
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.Logger = slog.New(rec) })
	e.mustOK("createJob", map[string]any{"description": jobConfig("killme", 1, false, 1, "sleep 600")})
	e.await("killme", "RUNNING", func(ts map[string][]api.ScheduledTask) bool { return len(ts["RUNNING"]) == 1 })
	e.mustOK("killTasks", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: "killme"}})
	e.await("killme", "KILLED", func(ts map[string][]api.ScheduledTask) bool { return len(ts["KILLED"]) == 1 })
	e.eventually("the executor's end reported", func() bool { return len(rec.find("executor")) > 0 })
	for _, r := range rec.find("executor") {
		if r.Level >= slog.LevelWarn {
			t.Errorf("a normal kill logged %v %q", r.Level, r.Message)
		}
	}
}
