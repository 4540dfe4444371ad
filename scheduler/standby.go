package scheduler

import (
	"io"
	"net/http"
	"slices"
)

// BypassLeaderRedirect is Aurora's BYPASS_LEADER_REDIRECT_HEADER_NAME: a
// request carrying it is answered by this scheduler even when it does not
// lead.
const BypassLeaderRedirect = "Bypass-Leader-Redirect"

// StandbyHandler serves a scheduler that is not (yet) the leader, as
// Aurora's leader-redirect filter does (§8.6, §9.1): /health is OK,
// /leaderhealth answers 503 while another scheduler leads and 502 while
// none does, and everything else is redirected (307) to the leader, or
// answered 503 when there is none. leader returns the leader's host:port.
// self lists this scheduler's own host:port (advertised and listening):
// a leader found there is this scheduler's own stale ServerSet member (a
// previous process's, whose ZooKeeper session has not expired yet), never
// a place to redirect to, and is answered as no leader is.
func StandbyHandler(self []string, leader func() (string, bool)) http.Handler {
	find := func() (string, bool) {
		addr, ok := leader()
		if ok && slices.Contains(self, addr) {
			return "", false
		}
		return addr, ok
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, "OK\n")
			return
		case "/leaderhealth":
			if _, ok := find(); ok {
				http.Error(w, "not the leading scheduler", http.StatusServiceUnavailable)
			} else {
				http.Error(w, "no leading scheduler", http.StatusBadGateway)
			}
			return
		}
		addr, ok := find()
		if !ok || r.Header.Get(BypassLeaderRedirect) != "" {
			http.Error(w, "This scheduler is not the leader, and no leader is known.", http.StatusServiceUnavailable)
			return
		}
		target := "http://" + addr + r.URL.Path
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusTemporaryRedirect)
	})
}
