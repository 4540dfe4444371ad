package master

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/limits"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const (
	mediaJSON     = mesosutil.MediaJSON
	mediaProtobuf = mesosutil.MediaProtobuf
	maxCallBytes  = limits.MesosCallBytes
)

// message, encode, decode and mediaTypes are mesosutil's, which the agent's
// v1 API shares.
type message = mesosutil.Message

func encode(media string, m message) ([]byte, error) { return mesosutil.Encode(media, m) }
func decode(media string, b []byte, m message) error { return mesosutil.Decode(media, b, m) }
func mediaTypes(r *http.Request) (in, out string)    { return mesosutil.MediaTypes(r) }

// Handler returns the master's HTTP API.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	m.registerOperator(mux)
	m.registerRoles(mux)
	m.registerMaintenance(mux)
	m.registerOperatorV1(mux)
	mux.HandleFunc("/", m.serveUI)
	m.registerAgentAPI(mux)
	return mux
}

func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Expecting a 'POST' request", http.StatusMethodNotAllowed)
		return
	}
	in, out := mediaTypes(r)
	if in == "" {
		http.Error(w, "Expecting 'Content-Type' of application/json or application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	if out == "" {
		http.Error(w, "Expecting 'Accept' to allow application/json or application/x-protobuf", http.StatusNotAcceptable)
		return
	}
	principal, ok := m.authenticateFramework(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes+1))
	if err != nil || len(body) > maxCallBytes {
		http.Error(w, "Failed to read the request body", http.StatusBadRequest)
		return
	}
	var call scheduler.Call
	if err := decode(in, body, &call); err != nil {
		http.Error(w, "Failed to parse body into Call: "+err.Error(), http.StatusBadRequest)
		return
	}
	if call.GetType() == scheduler.Call_UNKNOWN {
		http.Error(w, "Expecting 'type' to be present", http.StatusBadRequest)
		return
	}
	if call.GetType() == scheduler.Call_SUBSCRIBE {
		m.serveSubscribe(w, r, &call, out, principal)
		return
	}
	if call.FrameworkID == nil || call.FrameworkID.Value == "" {
		http.Error(w, "Expecting 'framework_id' to be present", http.StatusBadRequest)
		return
	}
	if !m.checkCallPrincipal(w, call.FrameworkID.Value, principal) {
		return
	}
	if err := m.Handle(&call, r.Header.Get("Mesos-Stream-Id")); err != nil {
		writeCallError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func writeCallError(w http.ResponseWriter, err error) {
	var ce *CallError
	if errors.As(err, &ce) {
		http.Error(w, ce.Msg, ce.Status)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (m *Master) serveSubscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call, media, principal string) {
	if call.Subscribe == nil {
		http.Error(w, "Expecting 'subscribe' to be present", http.StatusBadRequest)
		return
	}
	info := call.Subscribe.FrameworkInfo
	if info == nil {
		http.Error(w, "Expecting 'subscribe.framework_info' to be present", http.StatusBadRequest)
		return
	}
	if call.FrameworkID != nil && info.GetID().GetValue() != call.FrameworkID.Value {
		http.Error(w, "'framework_id' differs from 'subscribe.framework_info.id'", http.StatusBadRequest)
		return
	}
	if !m.checkSubscribePrincipal(w, info, principal) {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	streamID := mesosutil.NewUUID()
	sub, fwID, err := m.Subscribe(*info, streamID, principal)
	var refused *subscribeRefusal
	if errors.As(err, &refused) {
		writeSubscribeRefusal(w, media, streamID, refused.msg)
		return
	}
	if err != nil {
		writeCallError(w, err)
		return
	}
	defer m.Disconnected(fwID, sub)
	w.Header().Set("Content-Type", media)
	w.Header().Set("Mesos-Stream-Id", streamID)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	// Until the subscription ends, delivering what is queued (such as a
	// failover ERROR), or the framework goes.
	err = mesosutil.StreamEvents(r.Context(), mesosutil.NewFrameStream(w, 0), media, mesosutil.Events[*scheduler.Event]{
		Queue: sub.events, Done: sub.done,
		Heartbeat: &scheduler.Event{Type: scheduler.Event_HEARTBEAT}, HeartbeatEvery: m.cfg.HeartbeatInterval,
	})
	if err != nil && r.Context().Err() == nil {
		m.cfg.Logger.Info("scheduler event stream ended", "framework", fwID, "err", err)
	}
}

func splitAddr(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// ipv4ToUint32 encodes an address the way MasterInfo.ip does: the four bytes
// in network order, read as a little-endian integer (127.0.0.1 → 16777343).
func ipv4ToUint32(host string) uint32 {
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(ip)
}
