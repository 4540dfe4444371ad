package zookeeper

import (
	"fmt"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/ztree"
)

// txn is one committed state change, as it is written to the transaction
// log. It records outcomes, not requests (the final path of a sequential
// create, the owner of an ephemeral), so that replay is deterministic and
// needs no ACL checks.
type txn struct {
	Session int64
	Zxid    int64
	Time    int64 // ms since the epoch
	Type    int32 // jute.Op*: Create, Delete, SetData, SetACL, CreateSession, CloseSession, Multi

	Path      string
	Data      []byte
	ACL       []jute.ACL
	Ephemeral bool
	Timeout   int32
	Passwd    []byte
	Ops       []txn // multi
}

func (t *txn) encode(e *jute.Encoder) {
	e.Int64(t.Session)
	e.Int64(t.Zxid)
	e.Int64(t.Time)
	t.encodeBody(e)
}

func (t *txn) encodeBody(e *jute.Encoder) {
	e.Int32(t.Type)
	switch t.Type {
	case jute.OpCreate:
		e.String(t.Path)
		e.Buffer(t.Data)
		e.ACLs(t.ACL)
		e.Bool(t.Ephemeral)
	case jute.OpDelete:
		e.String(t.Path)
	case jute.OpSetData:
		e.String(t.Path)
		e.Buffer(t.Data)
	case jute.OpSetACL:
		e.String(t.Path)
		e.ACLs(t.ACL)
	case jute.OpCreateSession:
		e.Int32(t.Timeout)
		e.Buffer(t.Passwd)
	case jute.OpCloseSession:
	case jute.OpMulti:
		e.Int32(int32(len(t.Ops)))
		for i := range t.Ops {
			t.Ops[i].encodeBody(e)
		}
	}
}

func decodeTxn(d *jute.Decoder) (txn, error) {
	var t txn
	t.Session, t.Zxid, t.Time = d.Int64(), d.Int64(), d.Int64()
	if err := t.decodeBody(d, true); err != nil {
		return t, err
	}
	return t, d.Err()
}

func (t *txn) decodeBody(d *jute.Decoder, top bool) error {
	t.Type = d.Int32()
	switch t.Type {
	case jute.OpCreate:
		t.Path, t.Data, t.ACL, t.Ephemeral = d.String(), d.Buffer(), d.ACLs(), d.Bool()
	case jute.OpDelete:
		t.Path = d.String()
	case jute.OpSetData:
		t.Path, t.Data = d.String(), d.Buffer()
	case jute.OpSetACL:
		t.Path, t.ACL = d.String(), d.ACLs()
	case jute.OpCreateSession:
		t.Timeout, t.Passwd = d.Int32(), d.Buffer()
	case jute.OpCloseSession:
	case jute.OpMulti:
		if !top {
			return fmt.Errorf("txn: nested multi")
		}
		n := d.Int32()
		if n < 0 || int(n) > d.Remaining() {
			return fmt.Errorf("txn: bad multi length %d", n)
		}
		for i := int32(0); i < n && d.Err() == nil; i++ {
			var op txn
			op.Session, op.Zxid, op.Time = t.Session, t.Zxid, t.Time
			if err := op.decodeBody(d, false); err != nil {
				return err
			}
			t.Ops = append(t.Ops, op)
		}
	default:
		return fmt.Errorf("txn: unknown type %d", t.Type)
	}
	return d.Err()
}

// apply replays t on the tree and session table. Errors mean the log and
// the tree disagree, which is corruption.
func (t *txn) apply(tree *ztree.Tree, sessions map[int64]*session) error {
	switch t.Type {
	case jute.OpCreate:
		var flags int32
		owner := int64(0)
		if t.Ephemeral {
			flags, owner = jute.FlagEphemeral, t.Session
		}
		_, _, err := tree.Create(t.Path, t.Data, t.ACL, flags, owner, t.Zxid, t.Time, nil)
		return err
	case jute.OpDelete:
		return tree.Delete(t.Path, -1, t.Zxid, nil)
	case jute.OpSetData:
		_, err := tree.SetData(t.Path, t.Data, -1, t.Zxid, t.Time, nil)
		return err
	case jute.OpSetACL:
		_, err := tree.SetACL(t.Path, t.ACL, -1, nil)
		return err
	case jute.OpCreateSession:
		sessions[t.Session] = &session{id: t.Session, timeout: t.Timeout, passwd: t.Passwd}
	case jute.OpCloseSession:
		tree.CloseSession(t.Session, t.Zxid)
		delete(sessions, t.Session)
	case jute.OpMulti:
		for i := range t.Ops {
			if err := t.Ops[i].apply(tree, sessions); err != nil {
				return err
			}
		}
	}
	return nil
}
