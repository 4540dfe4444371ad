// Package storage is the scheduler's durable store: jobs (cron templates
// among them), tasks, quotas, host maintenance modes and SLA-aware drain
// requests, job updates with their events, the cron jobs' last firings and
// the framework id in one bbolt file. bbolt
// (pure Go, one file, B+tree with copy-on-write pages) commits each
// transaction with an fsync before Update returns, so the API acknowledges
// nothing that a kill -9 could lose, and a consistent copy of the whole
// store (a backup) is one read transaction away.
//
// The scheduler keeps its working set in memory and writes through: Load
// reads everything at start-up, and every change goes through Update.
package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/atomicfile"
	"github.com/aurorabox/aurorabox/scheduler/api"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta   = []byte("meta")
	bucketJobs   = []byte("jobs")
	bucketTasks  = []byte("tasks")
	bucketQuotas = []byte("quotas")
	// bucketMaintenance maps a hostname to its maintenance mode. It came
	// after schema 1's first buckets: Open adds it to an older store, and
	// Load reads a store (or backup) without it as having no maintenance.
	bucketMaintenance = []byte("maintenance")
	// Schema 2 added the job updates: bucketUpdates maps an update id to
	// its UpdateRecord, and the event buckets map "<update id>/<seq>" to
	// one event each, so that recording an event writes only the event.
	bucketUpdates        = []byte("updates")
	bucketUpdateEvents   = []byte("update_events")
	bucketInstanceEvents = []byte("instance_events")
	// bucketCronFired maps a cron job's key (role/env/name) to the
	// scheduled instant of its last firing, in ms since the epoch, so a
	// restarted scheduler neither fires that slot again nor catches up.
	// bucketDrainRequests maps a host to its SLA-aware drain request
	// (slaDrainHosts), as JSON the scheduler reads. Both came after
	// schema 2's first buckets without changing how older ones are read:
	// Open adds them, and Load reads a store without them as empty.
	bucketCronFired     = []byte("cron_fired")
	bucketDrainRequests = []byte("drain_requests")
	keyFramework        = []byte("framework_id")
	keySchema           = []byte("schema_version")
)

// schemaVersion is the layout of the buckets; a store from a newer
// version is refused rather than misread. Open upgrades an older store
// (schema 1 lacks the update buckets, which it adds); Load and Restore
// read a store or backup of any schema up to this one.
const schemaVersion = "2"

// readableSchema reports whether this version reads a store of schema v.
func readableSchema(v string) bool { return v == "1" || v == schemaVersion }

// Store is an open store.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating if needed) the store at path. Another scheduler
// holding it makes Open fail after a second instead of waiting forever.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil && !readableSchema(string(v)) {
			return fmt.Errorf("schema version %s, this scheduler reads up to %s", v, schemaVersion)
		}
		for _, b := range [][]byte{bucketJobs, bucketTasks, bucketQuotas, bucketMaintenance, bucketUpdates, bucketUpdateEvents, bucketInstanceEvents,
			bucketCronFired, bucketDrainRequests} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return meta.Put(keySchema, []byte(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Snapshot is everything in the store.
type Snapshot struct {
	FrameworkID string
	Jobs        []api.JobConfiguration
	Tasks       []api.ScheduledTask
	Quotas      map[string]json.RawMessage
	// Maintenance is each host's maintenance mode (hosts in none are absent).
	Maintenance map[string]string
	// Updates are the job updates with their events, in no order.
	Updates []StoredUpdate
	// CronFired is each cron job's last firing (the slot it stood for),
	// by job key.
	CronFired map[string]time.Time
	// DrainRequests are the SLA-aware drain requests by host, as stored.
	DrainRequests map[string]json.RawMessage
}

// UpdateRecord is a stored job update: Aurora's JobUpdate, and the state
// of the scheduler's update controller, which the store does not read.
type UpdateRecord struct {
	Update api.JobUpdate   `json:"update"`
	State  json.RawMessage `json:"state,omitempty"`
}

// StoredUpdate is an update and its events, oldest first.
type StoredUpdate struct {
	UpdateRecord
	Events         []api.JobUpdateEvent
	InstanceEvents []api.JobInstanceUpdateEvent
}

// Load reads the whole store.
func (s *Store) Load() (*Snapshot, error) {
	snap := &Snapshot{Quotas: map[string]json.RawMessage{}, Maintenance: map[string]string{},
		CronFired: map[string]time.Time{}, DrainRequests: map[string]json.RawMessage{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		snap.FrameworkID = string(tx.Bucket(bucketMeta).Get(keyFramework))
		if err := tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var j api.JobConfiguration
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("job %s: %w", k, err)
			}
			snap.Jobs = append(snap.Jobs, j)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			var t api.ScheduledTask
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("task %s: %w", k, err)
			}
			snap.Tasks = append(snap.Tasks, t)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQuotas).ForEach(func(k, v []byte) error {
			snap.Quotas[string(k)] = append(json.RawMessage(nil), v...)
			return nil
		}); err != nil {
			return err
		}
		if b := tx.Bucket(bucketMaintenance); b != nil { // nil: a store or backup from before maintenance was stored
			if err := b.ForEach(func(k, v []byte) error {
				snap.Maintenance[string(k)] = string(v)
				return nil
			}); err != nil {
				return err
			}
		}
		if err := loadCronAndDrains(tx, snap); err != nil {
			return err
		}
		return loadUpdates(tx, snap)
	})
	if err != nil {
		return nil, fmt.Errorf("storage: load: %w", err)
	}
	return snap, nil
}

// loadCronAndDrains reads the cron jobs' last firings and the drain
// requests; an older store has neither.
func loadCronAndDrains(tx *bolt.Tx, snap *Snapshot) error {
	if b := tx.Bucket(bucketCronFired); b != nil {
		if err := b.ForEach(func(k, v []byte) error {
			ms, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("cron last firing of %s: %w", k, err)
			}
			snap.CronFired[string(k)] = time.UnixMilli(ms)
			return nil
		}); err != nil {
			return err
		}
	}
	if b := tx.Bucket(bucketDrainRequests); b != nil {
		return b.ForEach(func(k, v []byte) error {
			snap.DrainRequests[string(k)] = append(json.RawMessage(nil), v...)
			return nil
		})
	}
	return nil
}

// loadUpdates reads the updates and their events; a store of schema 1
// has none.
func loadUpdates(tx *bolt.Tx, snap *Snapshot) error {
	b := tx.Bucket(bucketUpdates)
	if b == nil {
		return nil
	}
	byID := map[string]*StoredUpdate{}
	var ids []string
	if err := b.ForEach(func(k, v []byte) error {
		var u StoredUpdate
		if err := json.Unmarshal(v, &u.UpdateRecord); err != nil {
			return fmt.Errorf("update %s: %w", k, err)
		}
		byID[string(k)] = &u
		ids = append(ids, string(k))
		return nil
	}); err != nil {
		return err
	}
	events := func(bucket []byte, add func(u *StoredUpdate, v []byte) error) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		// Keys are "<id>/<zero-padded seq>", so ForEach walks each
		// update's events in order.
		return b.ForEach(func(k, v []byte) error {
			id, _, _ := strings.Cut(string(k), "/")
			u := byID[id]
			if u == nil {
				return nil // an event of a deleted update
			}
			if err := add(u, v); err != nil {
				return fmt.Errorf("%s %s: %w", bucket, k, err)
			}
			return nil
		})
	}
	if err := events(bucketUpdateEvents, func(u *StoredUpdate, v []byte) error {
		var e api.JobUpdateEvent
		err := json.Unmarshal(v, &e)
		u.Events = append(u.Events, e)
		return err
	}); err != nil {
		return err
	}
	if err := events(bucketInstanceEvents, func(u *StoredUpdate, v []byte) error {
		var e api.JobInstanceUpdateEvent
		err := json.Unmarshal(v, &e)
		u.InstanceEvents = append(u.InstanceEvents, e)
		return err
	}); err != nil {
		return err
	}
	for _, id := range ids {
		snap.Updates = append(snap.Updates, *byID[id])
	}
	return nil
}

// Writer changes the store within one Update.
type Writer struct{ tx *bolt.Tx }

// Update applies f's changes atomically and durably (fsynced when it
// returns nil). An error from f discards them all.
func (s *Store) Update(f func(w *Writer) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return f(&Writer{tx}) })
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// SetFrameworkID records the Mesos framework id.
func (w *Writer) SetFrameworkID(id string) error {
	return w.tx.Bucket(bucketMeta).Put(keyFramework, []byte(id))
}

// SaveJob stores a job configuration, replacing any with the same key.
func (w *Writer) SaveJob(j api.JobConfiguration) error {
	return put(w.tx.Bucket(bucketJobs), j.Key.String(), j)
}

// DeleteJob removes a job configuration.
func (w *Writer) DeleteJob(k api.JobKey) error {
	return w.tx.Bucket(bucketJobs).Delete([]byte(k.String()))
}

// SaveTask stores a task, replacing any with the same id.
func (w *Writer) SaveTask(t api.ScheduledTask) error {
	if t.AssignedTask.TaskID == "" {
		return errors.New("storage: task without an id")
	}
	return put(w.tx.Bucket(bucketTasks), t.AssignedTask.TaskID, t)
}

// DeleteTask removes a task.
func (w *Writer) DeleteTask(id string) error {
	return w.tx.Bucket(bucketTasks).Delete([]byte(id))
}

// SetQuota stores a role's quota (any JSON value); nil removes it.
func (w *Writer) SetQuota(role string, quota json.RawMessage) error {
	if quota == nil {
		return w.tx.Bucket(bucketQuotas).Delete([]byte(role))
	}
	return w.tx.Bucket(bucketQuotas).Put([]byte(role), quota)
}

// SetMaintenance stores a host's maintenance mode; "" or "NONE" removes
// the host (no maintenance).
func (w *Writer) SetMaintenance(host, mode string) error {
	if host == "" {
		return errors.New("storage: maintenance for an empty hostname")
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketMaintenance)
	if err != nil {
		return err
	}
	if mode == "" || mode == "NONE" {
		return b.Delete([]byte(host))
	}
	return b.Put([]byte(host), []byte(mode))
}

// SetCronFired records the scheduled instant of a cron job's last firing;
// the zero time forgets it (the job was descheduled).
func (w *Writer) SetCronFired(job string, at time.Time) error {
	if job == "" {
		return errors.New("storage: cron firing of an empty job key")
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketCronFired)
	if err != nil {
		return err
	}
	if at.IsZero() {
		return b.Delete([]byte(job))
	}
	return b.Put([]byte(job), []byte(strconv.FormatInt(at.UnixMilli(), 10)))
}

// SetDrainRequest stores a host's SLA-aware drain request (any JSON
// value); nil removes it.
func (w *Writer) SetDrainRequest(host string, req json.RawMessage) error {
	if host == "" {
		return errors.New("storage: drain request for an empty hostname")
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketDrainRequests)
	if err != nil {
		return err
	}
	if req == nil {
		return b.Delete([]byte(host))
	}
	return b.Put([]byte(host), req)
}

// SaveUpdate stores a job update, replacing any with the same id.
func (w *Writer) SaveUpdate(r UpdateRecord) error {
	id := r.Update.Summary.Key.ID
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("storage: bad update id %q", id)
	}
	b, err := w.tx.CreateBucketIfNotExists(bucketUpdates)
	if err != nil {
		return err
	}
	return put(b, id, r)
}

// eventKey orders an update's events by seq.
func eventKey(id string, seq int) string { return fmt.Sprintf("%s/%010d", id, seq) }

// AddUpdateEvent stores an update's seq-th status event (seq counts from
// 0; storing a seq again replaces that event).
func (w *Writer) AddUpdateEvent(id string, seq int, e api.JobUpdateEvent) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketUpdateEvents)
	if err != nil {
		return err
	}
	return put(b, eventKey(id, seq), e)
}

// AddInstanceEvent stores an update's seq-th instance event.
func (w *Writer) AddInstanceEvent(id string, seq int, e api.JobInstanceUpdateEvent) error {
	b, err := w.tx.CreateBucketIfNotExists(bucketInstanceEvents)
	if err != nil {
		return err
	}
	return put(b, eventKey(id, seq), e)
}

// DeleteUpdate removes an update and its events.
func (w *Writer) DeleteUpdate(id string) error {
	if b := w.tx.Bucket(bucketUpdates); b != nil {
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{bucketUpdateEvents, bucketInstanceEvents} {
		b := w.tx.Bucket(name)
		if b == nil {
			continue
		}
		c := b.Cursor()
		prefix := []byte(id + "/")
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Seek(prefix) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// backupPrefix starts every backup's file name.
const backupPrefix = "scheduler-backup-"

// Backup writes a consistent copy of the store into dir and returns its
// name (scheduler-backup-<UTC time>).
func (s *Store) Backup(dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("storage: backup: %w", err)
	}
	name := backupPrefix + now.UTC().Format("2006-01-02-15-04-05.000")
	err := atomicfile.WriteFunc(filepath.Join(dir, name), 0o600, func(w io.Writer) error {
		return s.db.View(func(tx *bolt.Tx) error {
			_, err := tx.WriteTo(w)
			return err
		})
	})
	if err != nil {
		return "", fmt.Errorf("storage: backup: %w", err)
	}
	return name, nil
}

// ListBackups names the backups in dir, oldest first.
func ListBackups(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("storage: list backups: %w", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), backupPrefix) && !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Restore replaces the store at path with a backup. The scheduler must
// not have the store open. The backup is checked first: it must be a
// readable store of this schema or an older one (Open upgrades it).
func Restore(backup, path string) error {
	if _, err := os.Stat(backup); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	db, err := bolt.Open(backup, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("storage: restore: backup unreadable: %w", err)
	}
	b := &Store{db: db, path: backup}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || !readableSchema(string(meta.Get(keySchema))) {
			return errors.New("not a scheduler store of schema 1 to " + schemaVersion)
		}
		return nil
	})
	if err == nil {
		_, err = b.Load()
	}
	db.Close()
	if err != nil {
		return fmt.Errorf("storage: restore: backup unreadable: %w", err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	return nil
}
