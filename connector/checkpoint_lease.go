package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// leaseCheckpointPrefix starts the annotation of the Lease that holds the replay ids of one
// channel set: omniroute.io/replay-<first 8 bytes of the channel set's sha256, hex>.
const leaseCheckpointPrefix = "omniroute.io/replay-"

// leaseCheckpointTries bounds the read-modify-write rounds of one write that keeps meeting a
// concurrent update of the Lease (the leader's own renewals).
const leaseCheckpointTries = 5

// leaseCheckpointTimeout bounds one background write.
const leaseCheckpointTimeout = 10 * time.Second

// leaseCheckpointOptions configure a LeaseCheckpointStore (LeaseElector.Checkpoints).
type leaseCheckpointOptions struct {
	Client          kubernetes.Interface
	Namespace, Name string
	Identity        string
	MinGap          time.Duration
	Logger          *slog.Logger
	now             func() time.Time
	afterFunc       func(time.Duration, func()) *time.Timer
}

// LeaseCheckpointStore keeps the stream's replay ids (salesforce.CheckpointStore) in an
// annotation of the leader election Lease, as the same JSON document as FileCheckpointStore,
// so that whichever pod leads next resumes the stream where the last leader committed,
// without a volume.
//
// Why the Lease and not a ConfigMap: the Lease is already written every retry period by its
// renewals, the RBAC the election needs (get, update on the Lease) covers it, and a write is
// fenced: it reads the Lease, checks that this replica holds it, and updates it with that
// read's resourceVersion, so a replica that lost the lease can never overwrite its
// successor's ids. The document is a few hundred bytes, far below the 256 KiB that all of an
// object's annotations may take.
//
// Write frequency: the stream commits after every routed event; the store writes at most once
// per MinGap (the election's retry period). A Save within MinGap of the last write keeps the
// ids and writes them when MinGap has passed (or at Flush, which the daemon calls once the
// router stopped and before the Lease is released). So the stored ids may trail the
// committed ones by one retry period, never lead them: a crashed leader's successor replays
// at most those seconds of events on top of its reconcile, which the router takes as any
// replay.
type LeaseCheckpointStore struct {
	o        leaseCheckpointOptions
	channels []string
	key      string

	mu      sync.Mutex
	last    time.Time        // when the last write began
	pending map[string]int64 // ids saved but not written yet
	timer   *time.Timer
}

func newLeaseCheckpointStore(o leaseCheckpointOptions, channels []string) (*LeaseCheckpointStore, error) {
	chs, sum, err := checkpointChannels(channels)
	if err != nil {
		return nil, err
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.afterFunc == nil {
		o.afterFunc = time.AfterFunc
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &LeaseCheckpointStore{o: o, channels: chs, key: leaseCheckpointPrefix + sum}, nil
}

// Annotation is the Lease annotation the store uses.
func (s *LeaseCheckpointStore) Annotation() string { return s.key }

// Load reads the ids from the Lease. No Lease, or no annotation for this channel set, is an
// empty checkpoint; an annotation that does not parse is an error, as in FileCheckpointStore.
func (s *LeaseCheckpointStore) Load(ctx context.Context) (map[string]int64, error) {
	lease, err := s.o.Client.CoordinationV1().Leases(s.o.Namespace).Get(ctx, s.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint from lease %s/%s: %w", s.o.Namespace, s.o.Name, err)
	}
	raw, ok := lease.Annotations[s.key]
	if !ok {
		return map[string]int64{}, nil
	}
	ids, err := decodeCheckpoint([]byte(raw), s.channels)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint from lease %s/%s annotation %s: %w", s.o.Namespace, s.o.Name, s.key, err)
	}
	return ids, nil
}

// Save records ids and writes them to the Lease when the last write is at least MinGap old;
// otherwise they are written once MinGap has passed. A write that fails (the API server
// unreachable, the Lease held by another replica) is logged and tried again MinGap later
// with the newest ids; it does not fail Save: the leader election, not the checkpoint,
// decides whether this replica may route, and ids that trail are safe.
func (s *LeaseCheckpointStore) Save(ctx context.Context, ids map[string]int64) error {
	for ch := range ids {
		if _, ok := slices.BinarySearch(s.channels, ch); !ok {
			return fmt.Errorf("save checkpoint: channel %q is not in this store's set", ch)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = maps.Clone(ids)
	if wait := s.last.Add(s.o.MinGap).Sub(s.o.now()); wait > 0 {
		s.armLocked()
		return nil
	}
	if err := s.writeLocked(ctx); err != nil {
		s.o.Logger.Warn("replay checkpoint not written to the lease; retrying", "err", err)
		s.armLocked()
	}
	return nil
}

// Flush writes the ids saved but not written yet, at once, and returns the write's error.
func (s *LeaseCheckpointStore) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.pending == nil {
		return nil
	}
	return s.writeLocked(ctx)
}

// armLocked makes sure a timer writes the pending ids once MinGap after the last write.
func (s *LeaseCheckpointStore) armLocked() {
	if s.timer != nil {
		return
	}
	wait := max(s.last.Add(s.o.MinGap).Sub(s.o.now()), 0)
	s.timer = s.o.afterFunc(wait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.timer = nil
		if s.pending == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), leaseCheckpointTimeout)
		defer cancel()
		if err := s.writeLocked(ctx); err != nil {
			s.o.Logger.Warn("replay checkpoint not written to the lease; retrying", "err", err)
			s.armLocked()
		}
	})
}

// writeLocked writes the pending ids: read the Lease, check the holder, update it with the
// read's resourceVersion; a conflict (a renewal in between) reads again.
func (s *LeaseCheckpointStore) writeLocked(ctx context.Context) error {
	b, err := json.Marshal(checkpointFile{Version: 1, Channels: s.channels, ReplayIDs: s.pending})
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	s.last = s.o.now()
	leases := s.o.Client.CoordinationV1().Leases(s.o.Namespace)
	for try := 1; ; try++ {
		lease, err := leases.Get(ctx, s.o.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("save checkpoint to lease %s/%s: %w", s.o.Namespace, s.o.Name, err)
		}
		if h := lease.Spec.HolderIdentity; h == nil || *h != s.o.Identity {
			holder := ""
			if h != nil {
				holder = *h
			}
			return fmt.Errorf("save checkpoint to lease %s/%s: held by %q, not by this replica (%s)", s.o.Namespace, s.o.Name, holder, s.o.Identity)
		}
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[s.key] = string(b)
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		switch {
		case err == nil:
			s.pending = nil
			return nil
		case apierrors.IsConflict(err) && try < leaseCheckpointTries:
			continue
		default:
			return fmt.Errorf("save checkpoint to lease %s/%s: %w", s.o.Namespace, s.o.Name, err)
		}
	}
}
