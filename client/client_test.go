package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/zktest"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/go-zookeeper/zk"
)

func startZK(t *testing.T) (host string, port int) {
	t.Helper()
	h, p, _ := net.SplitHostPort(zktest.Start(t))
	port, _ = strconv.Atoi(p)
	return h, port
}

// The leader is found through the ServerSet in ZooKeeper (members written
// with go-zookeeper, as Aurora's scheduler writes them), before and in
// preference to scheduler_uri.
func TestLeaderFromServerSet(t *testing.T) {
	host, port := startZK(t)
	conn, _, err := zk.Connect([]string{net.JoinHostPort(host, strconv.Itoa(port))}, 5*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range []string{"/aurora", "/aurora/scheduler"} {
		conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
	}
	members := []string{
		`{"serviceEndpoint":{"host":"10.0.0.1","port":8081},"additionalEndpoints":{"http":{"host":"10.0.0.1","port":8081}},"status":"ALIVE"}`,
		`{"serviceEndpoint":{"host":"10.0.0.2","port":8081},"additionalEndpoints":{"http":{"host":"10.0.0.2","port":8081}},"status":"ALIVE"}`,
	}
	for _, m := range members {
		if _, err := conn.Create("/aurora/scheduler/member_", []byte(m), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	conn.Create("/aurora/scheduler/singleton_candidate_0000000009", []byte("x"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	cl := Cluster{Name: "c", ZK: host, ZKPort: port, SchedulerZKPath: "/aurora/scheduler", SchedulerURI: "http://fallback:1"}
	c, err := New(map[string]Cluster{"c": cl}, "c")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Leader(context.Background()); err != nil || got != "http://10.0.0.1:8081" {
		t.Fatalf("leader %q %v; want the first member's http endpoint", got, err)
	}

	// With the ServerSet empty and no scheduler_uri: exit 7, naming where it looked.
	kids, _, _ := conn.Children("/aurora/scheduler")
	for _, k := range kids {
		conn.Delete("/aurora/scheduler/"+k, -1)
	}
	cl.SchedulerURI = ""
	c, _ = New(map[string]Cluster{"c": cl}, "c")
	_, err = c.Leader(context.Background())
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != ExitNetworkError || !strings.Contains(err.Error(), "/aurora/scheduler") {
		t.Fatalf("empty ServerSet: %v", err)
	}
}

// The appliance's clusters.json is found without AURORA_CONFIG_ROOT, and
// the user's own files override it.
func TestLoadClustersOrder(t *testing.T) {
	data, root, home := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, body string) {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "clusters.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(data, `[{"name": "devcluster", "scheduler_uri": "http://appliance"}, {"name": "only-appliance", "scheduler_uri": "http://a"}]`)
	write(root, `{"devcluster": {"name": "devcluster", "scheduler_uri": "http://etc"}}`)
	write(filepath.Join(home, ".aurora"), `[{"name": "mine", "scheduler_uri": "http://home"}, {"scheduler_uri": "http://nameless"}]`)
	t.Setenv("AURORABOX_DATA_DIR", data)
	t.Setenv("AURORA_CONFIG_ROOT", root)
	t.Setenv("HOME", home)
	cs, err := LoadClusters()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs["devcluster"].SchedulerURI != "http://etc" || cs["only-appliance"].SchedulerURI != "http://a" || cs["mine"].SchedulerURI != "http://home" {
		t.Fatalf("clusters %+v", cs)
	}
	// A data dir given (the TUI's --data-dir) wins over $AURORABOX_DATA_DIR.
	other := t.TempDir()
	write(other, `[{"name": "other-appliance", "scheduler_uri": "http://o"}]`)
	if cs, err := LoadClustersFrom(other); err != nil || cs["other-appliance"].SchedulerURI != "http://o" || cs["only-appliance"].SchedulerURI != "" {
		t.Fatalf("LoadClustersFrom(other): %+v %v", cs, err)
	}
	write(root, `not json`)
	if _, err := LoadClusters(); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "clusters.json")) {
		t.Fatalf("bad file: %v", err)
	}
}

// A scheduler that answers 503 (a standby during an election, or a leader
// stopping) is asked again, and the call succeeds once one leads; an
// answer some scheduler gave (an API error) is not retried.
func TestCallRetriesThroughLeaderChange(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n := calls.Add(1); {
		case n <= 2:
			http.Error(w, "This scheduler is not the leader, and no leader is known.", http.StatusServiceUnavailable)
		case n <= 13:
			// A standby naming itself or a stale leader: a redirect loop.
			http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
		default:
			json.NewEncoder(w).Encode(api.Response{ResponseCode: api.OK})
		}
	}))
	defer srv.Close()
	c, err := New(map[string]Cluster{"c": {Name: "c", SchedulerURI: srv.URL}}, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), "getJobs", map[string]any{}); err != nil {
		t.Fatalf("call through a leader change: %v", err)
	}
	// 2 × 503, 11 requests of the redirect loop, the answer.
	if n := calls.Load(); n != 14 {
		t.Errorf("%d requests; want 14", n)
	}

	api500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(api.Response{ResponseCode: api.Error, Details: []api.ResponseDetail{{Message: "no"}}})
	}))
	defer api500.Close()
	calls.Store(0)
	c, _ = New(map[string]Cluster{"c": {Name: "c", SchedulerURI: api500.URL}}, "c")
	var ce *Error
	if _, err := c.Call(context.Background(), "getJobs", map[string]any{}); !errors.As(err, &ce) || ce.Code != ExitAPIError || calls.Load() != 1 {
		t.Errorf("API error: %v after %d requests; want exit %d after 1", err, calls.Load(), ExitAPIError)
	}
}

// Retries end after RetryFor with the last error: a scheduler that never
// comes back makes the call fail with ExitNetworkError.
func TestCallRetriesAreBounded(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	c, _ := New(map[string]Cluster{"c": {Name: "c", SchedulerURI: url}}, "c")
	c.RetryFor = 300 * time.Millisecond
	_, err := c.Call(context.Background(), "getJobs", map[string]any{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != ExitNetworkError {
		t.Fatalf("dead scheduler: %v; want exit %d", err, ExitNetworkError)
	}
}
