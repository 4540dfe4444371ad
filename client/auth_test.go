package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// authScheduler answers every RPC OK for aurora:pw and 401 + AUTH_FAILED
// otherwise, as the scheduler does for a mutating RPC.
func authScheduler(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "aurora" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Aurora"`)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(api.Response{ResponseCode: api.AuthFailed, Details: []api.ResponseDetail{{Message: "createJob requires valid HTTP basic credentials."}}})
			return
		}
		json.NewEncoder(w).Encode(api.Response{ResponseCode: api.OK})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The client finds the appliance's credential through basic_auth_file in
// the data dir's clusters.json, falls back to ~/.netrc, and an
// unauthenticated call fails with ExitAuthError saying what to do.
func TestApplianceCredential(t *testing.T) {
	srv := authScheduler(t)
	data, home := t.TempDir(), t.TempDir()
	t.Setenv("AURORABOX_DATA_DIR", data)
	t.Setenv("AURORA_CONFIG_ROOT", t.TempDir())
	t.Setenv("HOME", home)
	cred := filepath.Join(data, "scheduler", "shiro.ini")
	os.MkdirAll(filepath.Dir(cred), 0o700)
	os.WriteFile(cred, []byte("# generated\n[users]\naurora = pw, admin\n\n[roles]\nadmin = *\n"), 0o600)
	writeClusters := func(entry map[string]any) {
		b, _ := json.Marshal([]map[string]any{entry})
		os.WriteFile(filepath.Join(data, "clusters.json"), b, 0o644)
	}
	call := func() (*Client, error) {
		cs, err := LoadClusters()
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(cs, "devcluster")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Call(context.Background(), "createJob", map[string]any{})
		return c, err
	}
	authFailed := func(err error, want string) {
		t.Helper()
		var ce *Error
		if !errors.As(err, &ce) || ce.Code != ExitAuthError || !strings.Contains(err.Error(), "Authentication failed for createJob at "+srv.URL+" (HTTP 401: createJob requires valid HTTP basic credentials.)") || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want exit %d with %q", err, ExitAuthError, want)
		}
	}

	writeClusters(map[string]any{"name": "devcluster", "scheduler_uri": srv.URL, "basic_auth_file": cred})
	if c, err := call(); err != nil || c.User != "aurora" || c.credSource != cred {
		t.Fatalf("with the appliance's credential: %v (user %q from %q)", err, c.User, c.credSource)
	}

	// No credential anywhere: 401 → exit 30.
	writeClusters(map[string]any{"name": "devcluster", "scheduler_uri": srv.URL})
	_, err := call()
	authFailed(err, "no credentials for cluster devcluster; put `machine 127.0.0.1 login USER password PASSWORD` in ~/.netrc")

	// An unreadable credential file is named.
	writeClusters(map[string]any{"name": "devcluster", "scheduler_uri": srv.URL, "basic_auth_file": cred + ".gone"})
	_, err = call()
	authFailed(err, "the cluster's credential file could not be read: open "+cred+".gone")

	// ~/.netrc serves any other cluster, as in Aurora.
	os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1\n  login aurora\n  password pw\n"), 0o600)
	if c, err := call(); err != nil || c.credSource != "~/.netrc" {
		t.Fatalf("with ~/.netrc: %v", err)
	}
	// Wrong credentials say whose they were.
	os.WriteFile(filepath.Join(home, ".netrc"), []byte("machine 127.0.0.1 login aurora password nope\n"), 0o600)
	_, err = call()
	authFailed(err, "the scheduler refused user aurora from ~/.netrc")
}
