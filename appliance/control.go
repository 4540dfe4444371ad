package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// The supervisor answers `status`, `restart` and `down` over HTTP on a unix socket in
// the data dir: only users who can reach the data dir can control it.
func socketPath(cfg *config.Config) string { return cfg.Path("aurorabox.sock") }

// maxSocketPath is sun_path's limit (108 bytes with the NUL).
const maxSocketPath = 107

type controlServer struct {
	srv *http.Server
	ln  net.Listener
}

// controlHandlers are what the control socket serves.
type controlHandlers struct {
	status   func() *status.Appliance
	shutdown func()
	// restart restarts one component; supervise.ErrUnknownComponent for a
	// name the appliance does not run.
	restart func(ctx context.Context, name string) error
}

func startControl(path string, h controlHandlers) (*controlServer, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket path %s is longer than %d bytes; use a shorter --data-dir", path, maxSocketPath)
	}
	os.Remove(path) // a stale socket from a killed supervisor; we hold the lock
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h.status())
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		h.shutdown()
	})
	// POST /v1/restart/<component>: answers once the component's new run is
	// ready (200), or with the reason it is not (404 unknown, 500 failed).
	mux.HandleFunc("POST /v1/restart/{component}", func(w http.ResponseWriter, r *http.Request) {
		err := h.restart(r.Context(), r.PathValue("component"))
		switch {
		case errors.Is(err, supervise.ErrUnknownComponent):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	cs := &controlServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go cs.srv.Serve(ln)
	return cs, nil
}

func (cs *controlServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cs.srv.Shutdown(ctx)
	os.Remove(cs.ln.Addr().String())
}

// ErrNotRunning means no supervisor answers on the data dir's socket.
var ErrNotRunning = errors.New("not running")

func controlClient(cfg *config.Config, timeout time.Duration) *http.Client {
	path := socketPath(cfg)
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		},
	}
}

// controlError is a non-2xx answer of the supervisor.
type controlError struct {
	code int
	msg  string
}

func (e *controlError) Error() string { return e.msg }

func controlDo(ctx context.Context, cfg *config.Config, method, path string, out any) error {
	return controlDoTimeout(ctx, cfg, method, path, out, 5*time.Second)
}

func controlDoTimeout(ctx context.Context, cfg *config.Config, method, path string, out any, timeout time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://aurorabox"+path, nil)
	if err != nil {
		return err
	}
	resp, err := controlClient(cfg, timeout).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return ErrNotRunning
		}
		return fmt.Errorf("supervisor: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = resp.Status
		}
		return &controlError{resp.StatusCode, fmt.Sprintf("supervisor: %s %s: %s", method, path, msg)}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
