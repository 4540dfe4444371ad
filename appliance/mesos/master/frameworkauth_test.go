package master_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// testCredentials are the framework credentials of startAuthMaster's
// masters.
var testCredentials = master.Credentials{"aurora": "s3cret-aurora", "other": "s3cret-other"}

// startAuthMaster starts a master with testCredentials and, unlike
// startMaster, without root_submissions unless cfg sets it.
func startAuthMaster(t *testing.T, cfg master.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg.ListenAddr = srv.Listener.Addr().String()
	cfg.AgentSecret = testAgentSecret
	if cfg.Credentials == nil {
		cfg.Credentials = testCredentials
	}
	srv.Config.Handler = master.New(cfg).Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// trySubscribe subscribes info with mesos-go's client, with HTTP basic
// authentication as principal unless it is empty. It returns the framework
// and its first event (SUBSCRIBED, or the ERROR of a refusal), or the
// client's error.
func trySubscribe(t *testing.T, url string, info *mesos.FrameworkInfo, principal, secret string) (*sched, *scheduler.Event, error) {
	t.Helper()
	var opts []httpcli.ConfigOpt
	if principal != "" {
		opts = append(opts, httpcli.BasicAuth(principal, secret))
	}
	cli := httpcli.New(httpcli.Endpoint(url+"/api/v1/scheduler"), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeJSON]),
		httpcli.Do(httpcli.With(opts...)))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// No retries: mesos-go retries a failed SUBSCRIBE for about a minute.
	s := &sched{t: t, caller: httpsched.NewCaller(cli, httpsched.MaxRedirects(0)), events: make(chan *scheduler.Event, 100), cancel: cancel}
	call := calls.Subscribe(info)
	if info.ID != nil {
		call = call.With(calls.SubscribeTo(info.ID.Value))
	}
	resp, err := s.caller.Call(ctx, call)
	if err != nil {
		return nil, nil, err
	}
	mesostest.Pump[scheduler.Event](resp, s.events)
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("the subscription stream ended with no event")
		}
		if ev.Type == scheduler.Event_SUBSCRIBED {
			s.fwID = ev.Subscribed.FrameworkID.Value
			s.subscribed = ev.Subscribed
		}
		return s, ev, nil
	case <-time.After(10 * time.Second):
		t.Fatal("no event after SUBSCRIBE")
	}
	return nil, nil, nil
}

func userFramework(user string) *mesos.FrameworkInfo {
	return &mesos.FrameworkInfo{User: user, Name: "fw-" + user, Hostname: proto("localhost")}
}

// launchOne launches a command task (whose CommandInfo.user is cmdUser
// unless empty) on the framework's first offer and returns the LAUNCH
// command the agent received.
func launchOne(t *testing.T, s *sched, a *fakeAgent, id, cmdUser string) agentproto.Command {
	t.Helper()
	offer := s.next(scheduler.Event_OFFERS).Offers.Offers[0]
	task := commandTask(id, &offer, 1, 64)
	if cmdUser != "" {
		task.Command.User = proto(cmdUser)
	}
	s.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)))
	c := a.command(agentproto.CmdLaunch)
	if len(c.Tasks) != 1 || c.Tasks[0].TaskID.Value != id {
		t.Fatalf("LAUNCH of %v, want %s", c.Tasks, id)
	}
	return c
}

// TestRootFrameworkNeedsAuthentication: without root_submissions a
// framework whose user is root, or empty (the agent's own user, root), is
// refused at SUBSCRIBE unless it authenticated, with Mesos' ERROR event;
// an authenticated one subscribes with its principal in its FrameworkInfo
// and its launches tell the agent it may run as root; a www-data framework
// subscribes unauthenticated, and its launches say it may not (the agent
// refuses a task whose CommandInfo.user is root: see the agent's tests).
func TestRootFrameworkNeedsAuthentication(t *testing.T) {
	srv := startAuthMaster(t, master.Config{})
	a := startAgent(t, srv.URL)
	for _, user := range []string{"root", ""} {
		_, ev, err := trySubscribe(t, srv.URL, userFramework(user), "", "")
		if err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		msg := ev.GetError().GetMessage()
		if ev.Type != scheduler.Event_ERROR || !strings.Contains(msg, "is not allowed to run frameworks without --root_submissions set") ||
			!strings.Contains(msg, agentproto.RootRefusal) {
			t.Errorf("unauthenticated framework of user %q: %s %q, want an ERROR that it may not run as root", user, ev.Type, msg)
		}
	}

	www, ev, err := trySubscribe(t, srv.URL, userFramework("www-data"), "", "")
	if err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("www-data framework: %v %v", ev, err)
	}
	if c := launchOne(t, www, a, "www-1", "root"); c.RootAllowed {
		t.Error("the launch of an unauthenticated framework allows root")
	}
	www.cancel()

	s, ev, err := trySubscribe(t, srv.URL, userFramework("root"), "aurora", testCredentials["aurora"])
	if err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("authenticated root framework: %v %v", ev, err)
	}
	if c := launchOne(t, s, a, "root-1", ""); !c.RootAllowed || c.Framework.GetPrincipal() != "aurora" {
		t.Errorf("the launch of an authenticated framework: root allowed %v, principal %q; want true, aurora", c.RootAllowed, c.Framework.GetPrincipal())
	}
}

// TestRootSubmissionsOptIn: with root_submissions an unauthenticated root
// framework subscribes and may run tasks as root.
func TestRootSubmissionsOptIn(t *testing.T) {
	srv := startAuthMaster(t, master.Config{RootSubmissions: true})
	a := startAgent(t, srv.URL)
	s, ev, err := trySubscribe(t, srv.URL, userFramework("root"), "", "")
	if err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("root framework with root_submissions: %v %v", ev, err)
	}
	if c := launchOne(t, s, a, "root-1", ""); !c.RootAllowed {
		t.Error("with root_submissions the launch does not allow root")
	}
}

// rawCall POSTs a JSON call to the scheduler API with the given
// Authorization and stream id (either may be empty) and returns the
// response, whose body the caller closes.
func rawCall(t *testing.T, url, authorization, streamID string, call *scheduler.Call) *http.Response {
	t.Helper()
	body, err := json.Marshal(call)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if streamID != "" {
		req.Header.Set("Mesos-Stream-Id", streamID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func basic(principal, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(principal, secret)
	return req.Header.Get("Authorization")
}

// TestWrongCredentialGets401: a request that carries a credential must
// match one, whether or not authentication is required: a wrong secret,
// an unknown principal or another scheme gets 401 with Mesos' challenge.
func TestWrongCredentialGets401(t *testing.T) {
	srv := startAuthMaster(t, master.Config{})
	sub := calls.Subscribe(userFramework("www-data"))
	for _, auth := range []string{basic("aurora", "wrong"), basic("nobody", "s3cret-aurora"), basic("aurora", ""), "Bearer s3cret-aurora"} {
		resp := rawCall(t, srv.URL, auth, "", sub)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="mesos-master-scheduler"` {
			t.Errorf("Authorization %q: %s %q, want 401 with the challenge", auth, resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// mesos-go's client sees it as not authenticated.
	_, _, err := trySubscribe(t, srv.URL, userFramework("root"), "aurora", "wrong")
	if !apierrors.CodeNotAuthenticated.Matches(err) {
		t.Errorf("mesos-go subscribe with a wrong secret: %v, want 401", err)
	}
}

// TestAuthenticateHTTPFrameworks: when every framework must authenticate,
// a SUBSCRIBE without a credential gets 401, and one with it subscribes.
func TestAuthenticateHTTPFrameworks(t *testing.T) {
	srv := startAuthMaster(t, master.Config{AuthenticateHTTPFrameworks: true})
	_, _, err := trySubscribe(t, srv.URL, userFramework("www-data"), "", "")
	if !apierrors.CodeNotAuthenticated.Matches(err) {
		t.Errorf("unauthenticated SUBSCRIBE: %v, want 401", err)
	}
	if _, ev, err := trySubscribe(t, srv.URL, userFramework("www-data"), "other", testCredentials["other"]); err != nil || ev.Type != scheduler.Event_SUBSCRIBED {
		t.Errorf("authenticated SUBSCRIBE: %v %v", ev, err)
	}
	if err := master.ValidateAuthConfig(master.Config{AuthenticateHTTPFrameworks: true}); err == nil {
		t.Error("--authenticate-http-frameworks without credentials is accepted")
	}
}

// rawSubscribe subscribes with a raw JSON request and returns the stream
// id and the first event; the stream stays open until the test ends.
func rawSubscribe(t *testing.T, url, authorization string, info *mesos.FrameworkInfo) (string, *scheduler.Event) {
	t.Helper()
	resp := rawCall(t, url, authorization, "", calls.Subscribe(info))
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SUBSCRIBE: %s %s", resp.Status, b)
	}
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	var ev scheduler.Event
	if err := json.Unmarshal(buf, &ev); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("Mesos-Stream-Id"), &ev
}

// TestAuthenticatedFrameworkCallsNeedCredential: every call for a framework
// that authenticated must carry its credential: the stream id alone gets
// 401, another principal's credential 400 (Mesos' message).
func TestAuthenticatedFrameworkCallsNeedCredential(t *testing.T) {
	srv := startAuthMaster(t, master.Config{})
	auth := basic("aurora", testCredentials["aurora"])
	stream, ev := rawSubscribe(t, srv.URL, auth, userFramework("root"))
	if ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v", ev)
	}
	fwID := ev.Subscribed.FrameworkID.Value
	revive := calls.Revive().With(calls.Framework(fwID))
	for _, c := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {basic("other", testCredentials["other"]), http.StatusBadRequest}, {auth, http.StatusAccepted}} {
		resp := rawCall(t, srv.URL, c.auth, stream, revive)
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != c.want {
			t.Errorf("REVIVE with Authorization %q: %s %s, want %d", c.auth, resp.Status, b, c.want)
		}
	}
}

// TestFrameworkPrincipalRules: an authenticated framework may not name
// another principal; an unauthenticated one may not claim a principal the
// master has a credential for; and a framework's principal may not change
// when it subscribes again (Mesos' message).
func TestFrameworkPrincipalRules(t *testing.T) {
	srv := startAuthMaster(t, master.Config{})
	info := userFramework("www-data")
	info.Principal = proto("other")
	if resp := rawCall(t, srv.URL, basic("aurora", testCredentials["aurora"]), "", calls.Subscribe(info)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("authenticated as aurora naming principal other: %s, want 400", resp.Status)
	}
	if resp := rawCall(t, srv.URL, "", "", calls.Subscribe(info)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated claiming principal other: %s, want 401", resp.Status)
	}

	_, ev := rawSubscribe(t, srv.URL, basic("aurora", testCredentials["aurora"]), userFramework("root"))
	if ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v", ev)
	}
	takeover := userFramework("www-data")
	takeover.ID = &mesos.FrameworkID{Value: ev.Subscribed.FrameworkID.Value}
	for _, auth := range []string{"", basic("other", testCredentials["other"])} {
		resp := rawCall(t, srv.URL, auth, "", calls.Subscribe(takeover).With(calls.SubscribeTo(takeover.ID.Value)))
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(b, []byte("Changing framework's principal is not allowed.")) {
			t.Errorf("re-subscription of aurora's framework with Authorization %q: %s %s, want the principal-change ERROR", auth, resp.Status, b)
		}
	}
}

// TestReadCredentials: Mesos' JSON format, file:// paths, and a file that
// group or others can access is refused, naming it.
func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	os.WriteFile(path, []byte(`{"credentials": [{"principal": "aurora", "secret": "s3cret"}, {"principal": "msh", "secret": "x"}]}`), 0o600)
	creds, err := master.ReadCredentials("file://" + path)
	if err != nil || len(creds) != 2 || creds["aurora"] != "s3cret" || creds["msh"] != "x" {
		t.Fatalf("ReadCredentials: %v %v", creds, err)
	}
	os.Chmod(path, 0o640)
	if _, err := master.ReadCredentials(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0600") {
		t.Errorf("a 0640 credentials file: %v, want an error naming it", err)
	}
	for name, body := range map[string]string{
		"empty":      `{"credentials": []}`,
		"no-secret":  `{"credentials": [{"principal": "aurora"}]}`,
		"colon":      `{"credentials": [{"principal": "a:b", "secret": "s"}]}`,
		"duplicate":  `{"credentials": [{"principal": "a", "secret": "s"}, {"principal": "a", "secret": "t"}]}`,
		"unknown":    `{"credentials": [{"principal": "a", "secret": "s", "role": "x"}]}`,
		"not-json":   `principal secret`,
		"trailing":   `{"credentials": [{"principal": "a", "secret": "s"}]} {}`,
		"no-section": `{}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := master.ReadCredentials(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
}
