package jute

import "fmt"

// Op codes (ZooDefs.OpCode).
const (
	OpNotification    int32 = 0
	OpCreate          int32 = 1
	OpDelete          int32 = 2
	OpExists          int32 = 3
	OpGetData         int32 = 4
	OpSetData         int32 = 5
	OpGetACL          int32 = 6
	OpSetACL          int32 = 7
	OpGetChildren     int32 = 8
	OpSync            int32 = 9
	OpPing            int32 = 11
	OpGetChildren2    int32 = 12
	OpCheck           int32 = 13
	OpMulti           int32 = 14
	OpCreate2         int32 = 15
	OpReconfig        int32 = 16
	OpCheckWatches    int32 = 17
	OpRemoveWatches   int32 = 18
	OpCreateContainer int32 = 19
	OpDeleteContainer int32 = 20
	OpCreateTTL       int32 = 21
	OpMultiRead       int32 = 22
	OpAuth            int32 = 100
	OpSetWatches      int32 = 101
	OpSASL            int32 = 102
	OpGetEphemerals   int32 = 103
	OpGetAllChildren  int32 = 104
	OpSetWatches2     int32 = 105
	OpAddWatch        int32 = 106
	OpWhoAmI          int32 = 107
	OpCreateSession   int32 = -10
	OpCloseSession    int32 = -11
	OpError           int32 = -1
)

// Special xids.
const (
	XidNotification int32 = -1
	XidPing         int32 = -2
	XidAuth         int32 = -4
	XidSetWatches   int32 = -8
)

// Create flags (CreateMode).
const (
	FlagEphemeral  int32 = 1
	FlagSequential int32 = 2
	FlagContainer  int32 = 4
)

// Watcher event types and keeper states.
const (
	EventNone                int32 = -1
	EventNodeCreated         int32 = 1
	EventNodeDeleted         int32 = 2
	EventNodeDataChanged     int32 = 3
	EventNodeChildrenChanged int32 = 4

	StateSyncConnected int32 = 3
	StateExpired       int32 = -112
)

// Code is a ZooKeeper error code (KeeperException.Code). Code implements
// error so that tree operations can return one directly; OK is never
// returned as an error.
type Code int32

// Error codes.
const (
	OK                      Code = 0
	ErrSystemError          Code = -1
	ErrRuntimeInconsistency Code = -2
	ErrDataInconsistency    Code = -3
	ErrConnectionLoss       Code = -4
	ErrMarshallingError     Code = -5
	ErrUnimplemented        Code = -6
	ErrOperationTimeout     Code = -7
	ErrBadArguments         Code = -8
	ErrUnknownSession       Code = -12
	ErrAPIError             Code = -100
	ErrNoNode               Code = -101
	ErrNoAuth               Code = -102
	ErrBadVersion           Code = -103
	ErrNoChildrenForEphem   Code = -108
	ErrNodeExists           Code = -110
	ErrNotEmpty             Code = -111
	ErrSessionExpired       Code = -112
	ErrInvalidCallback      Code = -113
	ErrInvalidACL           Code = -114
	ErrAuthFailed           Code = -115
	ErrClosing              Code = -116
	ErrNothing              Code = -117
	ErrSessionMoved         Code = -118
	ErrNoWatcher            Code = -121
)

var codeNames = map[Code]string{
	OK: "ok", ErrSystemError: "system error", ErrRuntimeInconsistency: "runtime inconsistency",
	ErrDataInconsistency: "data inconsistency", ErrConnectionLoss: "connection loss",
	ErrMarshallingError: "marshalling error", ErrUnimplemented: "unimplemented",
	ErrOperationTimeout: "operation timeout", ErrBadArguments: "bad arguments",
	ErrUnknownSession: "unknown session", ErrAPIError: "api error", ErrNoNode: "no node",
	ErrNoAuth: "not authenticated", ErrBadVersion: "bad version",
	ErrNoChildrenForEphem: "no children for ephemerals", ErrNodeExists: "node exists",
	ErrNotEmpty: "not empty", ErrSessionExpired: "session expired",
	ErrInvalidCallback: "invalid callback", ErrInvalidACL: "invalid ACL",
	ErrAuthFailed: "auth failed", ErrClosing: "closing", ErrNothing: "nothing",
	ErrSessionMoved: "session moved", ErrNoWatcher: "no watcher",
}

func (c Code) Error() string {
	if n, ok := codeNames[c]; ok {
		return "zookeeper: " + n
	}
	return fmt.Sprintf("zookeeper: error %d", int32(c))
}

// CodeOf maps err to a wire code: nil is OK, a Code is itself, anything
// else is a system error.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	if c, ok := err.(Code); ok {
		return c
	}
	return ErrSystemError
}
