package scheduler

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStandbyHandler(t *testing.T) {
	leader, known := "10.0.0.1:8081", true
	h := StandbyHandler([]string{"10.0.0.2:8081"}, func() (string, bool) { return leader, known })
	for _, tc := range []struct {
		known    bool
		path     string
		bypass   bool
		code     int
		location string
	}{
		{true, "/health", false, 200, ""},
		{true, "/leaderhealth", false, 503, ""},
		{false, "/leaderhealth", false, 502, ""},
		{true, "/api/getJobs?x=1", false, 307, "http://10.0.0.1:8081/api/getJobs?x=1"},
		{true, "/scheduler/www-data", false, 307, "http://10.0.0.1:8081/scheduler/www-data"},
		{true, "/api/getJobs", true, 503, ""},
		{false, "/scheduler", false, 503, ""},
	} {
		known = tc.known
		req := httptest.NewRequest(http.MethodPost, tc.path, nil)
		if tc.bypass {
			req.Header.Set(BypassLeaderRedirect, "true")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code || rec.Header().Get("Location") != tc.location {
			t.Errorf("%s (leader known %v, bypass %v): %d %q; want %d %q", tc.path, tc.known, tc.bypass, rec.Code, rec.Header().Get("Location"), tc.code, tc.location)
		}
	}
}

// A standby never redirects to its own address: the ServerSet member found
// there is its own previous process's (a restart within the ZooKeeper
// session timeout). It answers as when no leader is known, and the client
// retries.
func TestStandbyNeverRedirectsToItself(t *testing.T) {
	self := "sched.local:8081"
	h := StandbyHandler([]string{self, "127.0.0.1:8081"}, func() (string, bool) { return self, true })
	for path, want := range map[string]int{"/api/getJobs": 503, "/scheduler": 503, "/leaderhealth": 502, "/health": 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		if rec.Code != want || rec.Header().Get("Location") != "" {
			t.Errorf("%s with our own stale member: %d %q; want %d and no redirect", path, rec.Code, rec.Header().Get("Location"), want)
		}
	}
}
