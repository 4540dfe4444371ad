package scheduler_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// Helpers for the API tests: clusters with named (and extra) agents,
// schedulers with a config of their own, and raw HTTP access.

// apiEnv is an env whose scheduler is built with configure, also when it
// is restarted.
type apiEnv struct {
	*env
	configure func(*scheduler.Config)
}

// startAPI runs a master with an agent whose hostname is host (the listen
// address when empty), one more agent for each of extraHosts, and a
// scheduler configured by configure (may be nil).
func startAPI(t *testing.T, host string, extraHosts []string, configure func(*scheduler.Config)) *apiEnv {
	t.Helper()
	var opts []func(*agent.Config)
	if host != "" {
		opts = append(opts, func(c *agent.Config) { c.Hostname = host })
	}
	e := &apiEnv{env: &env{t: t, cluster: mesostest.StartAgent(t, opts...), dataDir: t.TempDir()}, configure: configure}
	for _, h := range extraHosts {
		startExtraAgent(t, e.cluster.MasterURL, e.cluster.AgentSecret, h)
	}
	e.restart()
	t.Cleanup(func() { e.stop() })
	return e
}

// restart starts a scheduler on the env's data dir (the previous one must
// have been stopped).
func (e *apiEnv) restart() {
	e.t.Helper()
	self, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := scheduler.Config{
		ListenAddr: ln.Addr().String(), MasterURL: e.cluster.MasterURL, DataDir: e.dataDir,
		ExecutorPath: self, User: "root", Overhead: testOverhead,
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FrameworkCredential: &scheduler.FrameworkCredential{Principal: e.cluster.Principal, Secret: e.cluster.Secret},
	}
	if e.configure != nil {
		e.configure(&cfg)
	}
	s, err := scheduler.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { s.Serve(ctx, ln); done <- struct{}{} }()
	e.sched, e.url = s, "http://"+ln.Addr().String()
	e.stop = func() {
		cancel()
		<-done
		<-done
		s.Close()
	}
}

// startExtraAgent runs one more agent, named host, on the master (secret:
// the cluster's AgentSecret).
func startExtraAgent(t *testing.T, masterURL string, secret []byte, host string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	workDir := t.TempDir()
	for d := workDir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	res, _ := agent.ParseResources("cpus:4;mem:4096;disk:4096;ports:[31200-31300]")
	a, err := agent.New(agent.Config{
		ListenAddr: ln.Addr().String(), Hostname: host, MasterURL: masterURL, WorkDir: workDir, Resources: res,
		Exe: self, ExecutorShutdownGrace: 10 * time.Second, MasterSecret: secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { a.Run(ctx, ln); close(stopped) }()
	t.Cleanup(func() {
		a.Shutdown()
		cancel()
		<-stopped
	})
}

// httpResult is a raw API answer.
type httpResult struct {
	status int
	header http.Header
	resp   api.Response
}

// post calls the API with optional basic credentials (user "" for none).
func (e *env) post(method string, params any, user, pass string) httpResult {
	e.t.Helper()
	b, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/"+method, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := httpResult{status: resp.StatusCode, header: resp.Header}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out.resp); err != nil {
		e.t.Fatalf("%s: HTTP %d, body %q: %v", method, resp.StatusCode, body, err)
	}
	return out
}

// getJSON GETs an endpoint and decodes its JSON into v.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		e.t.Fatalf("GET %s: HTTP %d %s: %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// mustOK calls an RPC that must answer OK.
func (e *env) mustOK(method string, params any) api.Response {
	e.t.Helper()
	r := e.rpc(method, params)
	if r.ResponseCode != api.OK {
		e.t.Fatalf("%s: %+v", method, r)
	}
	return r
}

// eventually polls cond for up to 30 s.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.dumpExecutorLogs()
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitOffer waits until the scheduler holds an offer (so that it knows
// the agents' sizes).
func (e *env) awaitOffer() {
	e.t.Helper()
	e.eventually("an offer", func() bool {
		var offers []map[string]any
		e.getJSON("/offers", &offers)
		return len(offers) > 0
	})
}

// details joins a response's messages.
func details(r api.Response) string {
	var ms []string
	for _, d := range r.Details {
		ms = append(ms, d.Message)
	}
	return strings.Join(ms, " | ")
}

// vars reads /vars.json.
func (e *env) vars() map[string]float64 {
	e.t.Helper()
	var v map[string]float64
	e.getJSON("/vars.json", &v)
	return v
}

func jobKey(name string) api.JobKey {
	return api.JobKey{Role: "www-data", Environment: "prod", Name: name}
}

// hostsOf returns the hosts of the tasks in a status.
func hostsOf(ts []api.ScheduledTask) []string {
	var hs []string
	for _, t := range ts {
		hs = append(hs, t.AssignedTask.SlaveHost)
	}
	return hs
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
