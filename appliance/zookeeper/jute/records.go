package jute

// ConnectRequest opens or resumes a session. ReadOnly is present only when
// the client sent it (3.4+ clients do), and the response mirrors that.
type ConnectRequest struct {
	ProtocolVersion int32
	LastZxidSeen    int64
	Timeout         int32
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// Decode reads a ConnectRequest from d.
func (r *ConnectRequest) Decode(d *Decoder) {
	r.ProtocolVersion = d.Int32()
	r.LastZxidSeen = d.Int64()
	r.Timeout = d.Int32()
	r.SessionID = d.Int64()
	r.Passwd = d.Buffer()
	if d.Err() == nil && d.Remaining() > 0 {
		r.HasReadOnly = true
		r.ReadOnly = d.Bool()
	}
}

// ConnectResponse answers a ConnectRequest.
type ConnectResponse struct {
	ProtocolVersion int32
	Timeout         int32
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool
	HasReadOnly     bool
}

// Encode appends r to e.
func (r *ConnectResponse) Encode(e *Encoder) {
	e.Int32(r.ProtocolVersion)
	e.Int32(r.Timeout)
	e.Int64(r.SessionID)
	e.Buffer(r.Passwd)
	if r.HasReadOnly {
		e.Bool(r.ReadOnly)
	}
}

// RequestHeader starts every request after the handshake.
type RequestHeader struct {
	Xid  int32
	Type int32
}

// Decode reads a RequestHeader.
func (h *RequestHeader) Decode(d *Decoder) { h.Xid, h.Type = d.Int32(), d.Int32() }

// ReplyHeader starts every response and notification.
type ReplyHeader struct {
	Xid  int32
	Zxid int64
	Err  Code
}

// Encode appends h.
func (h *ReplyHeader) Encode(e *Encoder) {
	e.Int32(h.Xid)
	e.Int64(h.Zxid)
	e.Int32(int32(h.Err))
}

// CreateRequest is create, create2 and createContainer; TTL is set only
// for createTTL.
type CreateRequest struct {
	Path  string
	Data  []byte
	ACL   []ACL
	Flags int32
	TTL   int64
}

// Decode reads a CreateRequest.
func (r *CreateRequest) Decode(d *Decoder) {
	r.Path, r.Data, r.ACL, r.Flags = d.String(), d.Buffer(), d.ACLs(), d.Int32()
}

// PathVersion is the body of delete, setData's cousins and check.
type PathVersion struct {
	Path    string
	Version int32
}

// Decode reads a path and a version.
func (r *PathVersion) Decode(d *Decoder) { r.Path, r.Version = d.String(), d.Int32() }

// PathWatch is the body of exists, getData, getChildren and getChildren2.
type PathWatch struct {
	Path  string
	Watch bool
}

// Decode reads a path and a watch flag.
func (r *PathWatch) Decode(d *Decoder) { r.Path, r.Watch = d.String(), d.Bool() }

// SetDataRequest replaces a node's data.
type SetDataRequest struct {
	Path    string
	Data    []byte
	Version int32
}

// Decode reads a SetDataRequest.
func (r *SetDataRequest) Decode(d *Decoder) {
	r.Path, r.Data, r.Version = d.String(), d.Buffer(), d.Int32()
}

// SetACLRequest replaces a node's ACL.
type SetACLRequest struct {
	Path    string
	ACL     []ACL
	Version int32
}

// Decode reads a SetACLRequest.
func (r *SetACLRequest) Decode(d *Decoder) {
	r.Path, r.ACL, r.Version = d.String(), d.ACLs(), d.Int32()
}

// AuthPacket is addAuth.
type AuthPacket struct {
	Type   int32
	Scheme string
	Auth   []byte
}

// Decode reads an AuthPacket.
func (r *AuthPacket) Decode(d *Decoder) { r.Type, r.Scheme, r.Auth = d.Int32(), d.String(), d.Buffer() }

// SetWatches re-registers a reconnecting client's watches. The persistent
// lists are only in setWatches2.
type SetWatches struct {
	RelativeZxid                    int64
	Data, Exist, Child              []string
	Persistent, PersistentRecursive []string
}

// Decode reads SetWatches; v2 also reads the persistent lists.
func (r *SetWatches) Decode(d *Decoder, v2 bool) {
	r.RelativeZxid = d.Int64()
	r.Data, r.Exist, r.Child = d.Strings(), d.Strings(), d.Strings()
	if v2 {
		r.Persistent, r.PersistentRecursive = d.Strings(), d.Strings()
	}
}

// MultiHeader precedes each op of a multi request and each result of its
// response; Type -1 with Done ends the list.
type MultiHeader struct {
	Type int32
	Done bool
	Err  int32
}

// Decode reads a MultiHeader.
func (h *MultiHeader) Decode(d *Decoder) { h.Type, h.Done, h.Err = d.Int32(), d.Bool(), d.Int32() }

// Encode appends a MultiHeader.
func (h *MultiHeader) Encode(e *Encoder) {
	e.Int32(h.Type)
	e.Bool(h.Done)
	e.Int32(h.Err)
}

// WatcherEvent is the body of a notification (xid -1).
type WatcherEvent struct {
	Type  int32
	State int32
	Path  string
}

// Encode appends w.
func (w *WatcherEvent) Encode(e *Encoder) {
	e.Int32(w.Type)
	e.Int32(w.State)
	e.String(w.Path)
}
