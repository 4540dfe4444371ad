package zookeeper

import (
	"fmt"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/zookeeper/jute"
	"github.com/aurorabox/aurorabox/appliance/zookeeper/ztree"
)

// op is one decoded write: a single request or one element of a multi.
type op struct {
	typ     int32
	create  jute.CreateRequest
	path    string
	data    []byte
	acl     []jute.ACL
	version int32
}

func decodeOp(typ int32, d *jute.Decoder) (op, error) {
	o := op{typ: typ}
	switch typ {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
		o.create.Decode(d)
		if typ == jute.OpCreateTTL {
			o.create.TTL = d.Int64()
		}
	case jute.OpDelete, jute.OpCheck:
		var pv jute.PathVersion
		pv.Decode(d)
		o.path, o.version = pv.Path, pv.Version
	case jute.OpSetData:
		var sd jute.SetDataRequest
		sd.Decode(d)
		o.path, o.data, o.version = sd.Path, sd.Data, sd.Version
	case jute.OpSetACL:
		var sa jute.SetACLRequest
		sa.Decode(d)
		o.path, o.acl, o.version = sa.Path, sa.ACL, sa.Version
	default:
		return o, fmt.Errorf("op %d not allowed here", typ)
	}
	return o, d.Err()
}

// apply performs o on the tree. It returns the txn to log (Type 0 for a
// check, which changes nothing) and the response body.
func (p *processor) apply(o *op, sess *session, who *ztree.Who, zxid, now int64) (txn, func(*jute.Encoder), error) {
	switch o.typ {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
		cr := &o.create
		flags := cr.Flags
		switch {
		case o.typ == jute.OpCreateTTL:
			// TTL nodes need zookeeper.extendedTypesEnabled, off by default.
			return txn{}, nil, jute.ErrUnimplemented
		case o.typ == jute.OpCreateContainer && flags != jute.FlagContainer,
			o.typ != jute.OpCreateContainer && (flags < 0 || flags > 3):
			return txn{}, nil, jute.ErrBadArguments
		}
		// Containers are kept as plain persistent nodes: nothing reaps
		// them when their last child goes.
		flags &^= jute.FlagContainer
		// ZooKeeper's order: no slash or a NUL is BadArguments, then a
		// missing parent is NoNode, and only then is the path validated.
		slash := strings.LastIndexByte(cr.Path, '/')
		if slash < 0 || strings.IndexByte(cr.Path, 0) >= 0 {
			return txn{}, nil, jute.ErrBadArguments
		}
		parent := cr.Path[:slash]
		if parent == "" {
			parent = "/"
		}
		if _, ok := p.tree.Exists(parent); !ok {
			return txn{}, nil, jute.ErrNoNode
		}
		if err := ztree.ValidatePath(cr.Path, flags&jute.FlagSequential != 0); err != nil {
			return txn{}, nil, err
		}
		acl, err := ztree.FixupACL(cr.ACL, who)
		if err != nil {
			return txn{}, nil, err
		}
		path, st, err := p.tree.Create(cr.Path, cr.Data, acl, flags, sess.id, zxid, now, who)
		if err != nil {
			return txn{}, nil, err
		}
		t := txn{Type: jute.OpCreate, Path: path, Data: cr.Data, ACL: acl, Ephemeral: flags&jute.FlagEphemeral != 0}
		if o.typ == jute.OpCreate {
			return t, func(e *jute.Encoder) { e.String(path) }, nil
		}
		return t, func(e *jute.Encoder) { e.String(path); e.Stat(&st) }, nil
	case jute.OpDelete:
		if err := p.tree.Delete(o.path, o.version, zxid, who); err != nil {
			return txn{}, nil, err
		}
		return txn{Type: jute.OpDelete, Path: o.path}, nil, nil
	case jute.OpSetData:
		st, err := p.tree.SetData(o.path, o.data, o.version, zxid, now, who)
		if err != nil {
			return txn{}, nil, err
		}
		return txn{Type: jute.OpSetData, Path: o.path, Data: o.data}, func(e *jute.Encoder) { e.Stat(&st) }, nil
	case jute.OpSetACL:
		if err := ztree.ValidatePath(o.path, false); err != nil {
			return txn{}, nil, err
		}
		acl, err := ztree.FixupACL(o.acl, who)
		if err != nil {
			return txn{}, nil, err
		}
		st, err := p.tree.SetACL(o.path, acl, o.version, who)
		if err != nil {
			return txn{}, nil, err
		}
		return txn{Type: jute.OpSetACL, Path: o.path, ACL: acl}, func(e *jute.Encoder) { e.Stat(&st) }, nil
	case jute.OpCheck:
		return txn{}, nil, p.tree.Check(o.path, o.version, who)
	}
	return txn{}, nil, jute.ErrUnimplemented
}

func (p *processor) writeOne(r request, d *jute.Decoder) {
	o, err := decodeOp(r.hdr.Type, d)
	if err != nil {
		p.malformed(&r, err)
		return
	}
	sess := r.conn.sess
	zxid, now := p.zxid+1, p.now()
	t, body, err := p.apply(&o, sess, p.who(r.conn), zxid, now)
	if err != nil {
		p.reply(&r, p.zxid, jute.CodeOf(err), nil)
		return
	}
	p.zxid = zxid
	t.Session, t.Zxid, t.Time = sess.id, zxid, now
	p.log(t)
	p.fire()
	p.reply(&r, zxid, jute.OK, body)
}

// multi applies every op or none. As in ZooKeeper, a failed multi answers
// OK for the ops before the failure, the failure's code, then
// RuntimeInconsistency for the rest, with OK in the reply header.
func (p *processor) multi(r request, d *jute.Decoder) {
	var ops []op
	for {
		var h jute.MultiHeader
		h.Decode(d)
		if d.Err() != nil {
			p.malformed(&r, d.Err())
			return
		}
		if h.Done {
			break
		}
		o, err := decodeOp(h.Type, d)
		if err != nil || h.Type == jute.OpSetACL {
			if err == nil {
				err = fmt.Errorf("op %d not allowed in multi", h.Type)
			}
			p.malformed(&r, err)
			return
		}
		ops = append(ops, o)
	}
	sess, who := r.conn.sess, p.who(r.conn)
	zxid, now := p.zxid+1, p.now()
	txns := make([]txn, 0, len(ops))
	bodies := make([]func(*jute.Encoder), 0, len(ops))
	failed, code := -1, jute.OK
	p.tree.BeginMulti()
	before := p.tree.ChangeCount()
	for i := range ops {
		t, body, err := p.apply(&ops[i], sess, who, zxid, now)
		if err != nil {
			failed, code = i, jute.CodeOf(err)
			break
		}
		if t.Type != 0 {
			t.Session, t.Zxid, t.Time = sess.id, zxid, now
			txns = append(txns, t)
		}
		bodies = append(bodies, body)
	}
	p.tree.EndMulti(failed < 0, before)
	if failed >= 0 {
		p.reply(&r, p.zxid, jute.OK, func(e *jute.Encoder) {
			for i := range ops {
				c := jute.OK
				switch {
				case i == failed:
					c = code
				case i > failed:
					c = jute.ErrRuntimeInconsistency
				}
				(&jute.MultiHeader{Type: jute.OpError, Err: int32(c)}).Encode(e)
				e.Int32(int32(c))
			}
			(&jute.MultiHeader{Type: -1, Done: true, Err: -1}).Encode(e)
		})
		return
	}
	replyZxid := p.zxid
	if len(txns) > 0 {
		p.zxid = zxid
		replyZxid = zxid
		p.log(txn{Session: sess.id, Zxid: zxid, Time: now, Type: jute.OpMulti, Ops: txns})
		p.fire()
	}
	p.reply(&r, replyZxid, jute.OK, func(e *jute.Encoder) {
		for i := range ops {
			typ := ops[i].typ
			if typ == jute.OpCreateContainer {
				typ = jute.OpCreate2
			}
			(&jute.MultiHeader{Type: typ}).Encode(e)
			if bodies[i] != nil {
				bodies[i](e)
			}
		}
		(&jute.MultiHeader{Type: -1, Done: true, Err: -1}).Encode(e)
	})
}
