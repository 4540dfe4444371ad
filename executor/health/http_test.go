package health

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// server serves h and returns its port.
func server(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func reply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/health" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func TestHTTPProbe(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		code         int
		body         string
		expected     string
		expectedCode int
		ok           bool
		reason       string
	}{
		{"ok body", 200, "ok", "ok", 0, true, ""},
		{"stripped and lower-cased", 200, "  OK\n", "ok", 0, true, ""},
		{"expected compared case-insensitively", 200, "ok", "OK", 0, true, ""},
		{"wrong body", 200, "not ok", "ok", 0, false, `Response differs from expected response (expected "ok", got "not ok")`},
		{"long bodies shortened", 200, "Still Warming Up", "everything-fine", 0, false,
			`Response differs from expected response (expected "everyth...", got "still w...")`},
		{"nine characters kept", 200, "123456789", "ok", 0, false, `Response differs from expected response (expected "ok", got "123456789")`},
		{"ten characters cut", 200, "1234567890", "ok", 0, false, `Response differs from expected response (expected "ok", got "1234567...")`},
		{"any body", 200, "whatever", "", 0, true, ""},
		{"500 has an empty body", 500, "ok", "ok", 0, false, `Response differs from expected response (expected "ok", got "")`},
		{"500 with any body and any code", 500, "ok", "", 0, true, ""},
		{"500 expected", 500, "ok", "", 500, true, ""},
		{"code mismatch", 201, "ok", "ok", 200, false, "Response code differs from expected response (expected 200, got 201)"},
		{"body checked before code", 201, "bad", "ok", 200, false, `Response differs from expected response (expected "ok", got "bad")`},
		{"code match", 202, "OK", "ok", 202, true, ""},
		{"404 expected code", 404, "", "", 200, false, "Response code differs from expected response (expected 200, got 404)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := server(t, reply(tc.code, tc.body))
			ok, reason := HTTPProbe(ctx, port, "/health", tc.expected, tc.expectedCode, time.Second)
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("got %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

func TestHTTPProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	port := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "ok")
	})
	defer close(release)
	start := time.Now()
	ok, reason := HTTPProbe(context.Background(), port, "/health", "ok", 0, 200*time.Millisecond)
	want := fmt.Sprintf("Failed to signal http://localhost:%d/health: Error within timeout", port)
	if ok || reason != want {
		t.Errorf("got %v %q, want %q", ok, reason, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestHTTPProbeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ok, reason := HTTPProbe(context.Background(), port, "/health", "ok", 0, time.Second)
	prefix := fmt.Sprintf("Failed to signal http://localhost:%d/health: ", port)
	if ok || !strings.HasPrefix(reason, prefix) || !strings.Contains(reason, "connection refused") {
		t.Errorf("got %v %q", ok, reason)
	}
	t.Logf("reason: %s", reason)
	if strings.Contains(reason, `Get "`) {
		t.Errorf("Go's url.Error wrapper left in %q", reason)
	}
}

func TestHTTPTimeoutDefault(t *testing.T) {
	t.Setenv("AURORA_HTTP_SIGNALER_TIMEOUT_SECS", "")
	if d := httpTimeout(0); d != DefaultHTTPTimeout {
		t.Errorf("default %v", d)
	}
	t.Setenv("AURORA_HTTP_SIGNALER_TIMEOUT_SECS", "2.5")
	if d := httpTimeout(0); d != 2500*time.Millisecond {
		t.Errorf("env %v", d)
	}
	if d := httpTimeout(3 * time.Second); d != 3*time.Second {
		t.Errorf("explicit %v", d)
	}
}
