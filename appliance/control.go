package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// The supervisor answers `status` and `down` over HTTP on a unix socket in
// the data dir: only users who can reach the data dir can control it.
func socketPath(cfg *config.Config) string { return cfg.Path("aurorabox.sock") }

// maxSocketPath is sun_path's limit (108 bytes with the NUL).
const maxSocketPath = 107

type controlServer struct {
	srv *http.Server
	ln  net.Listener
}

func startControl(path string, status func() *Status, shutdown func()) (*controlServer, error) {
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
		json.NewEncoder(w).Encode(status())
	})
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		shutdown()
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

// errNotRunning means no supervisor answers on the data dir's socket.
var errNotRunning = errors.New("not running")

func controlClient(cfg *config.Config) *http.Client {
	path := socketPath(cfg)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		},
	}
}

func controlDo(ctx context.Context, cfg *config.Config, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://aurorabox"+path, nil)
	if err != nil {
		return err
	}
	resp, err := controlClient(cfg).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errNotRunning
		}
		return fmt.Errorf("supervisor: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("supervisor: %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
