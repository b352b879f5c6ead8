package connector

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// manualTimers stands in for time.AfterFunc: the test fires the timers not stopped.
type manualTimers struct {
	mu sync.Mutex
	ts []manualTimer
}

type manualTimer struct {
	t *time.Timer // never fires by itself; Stop tells whether it was stopped before
	f func()
}

func (m *manualTimers) afterFunc(_ time.Duration, f func()) *time.Timer {
	t := time.NewTimer(time.Hour)
	m.mu.Lock()
	m.ts = append(m.ts, manualTimer{t, f})
	m.mu.Unlock()
	return t
}

func (m *manualTimers) fire() int {
	m.mu.Lock()
	ts := m.ts
	m.ts = nil
	m.mu.Unlock()
	n := 0
	for _, t := range ts {
		if t.t.Stop() {
			t.f()
			n++
		}
	}
	return n
}

func leaseHeldBy(holder string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "omniroute"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}
}

// TestLeaseCheckpointStore: the replay ids live in an annotation of the Lease; a write happens
// at most once per gap (the ids of a Save within it are written when it has passed, or at
// Flush); only the holder of the Lease writes; a new store (another pod) reads them back.
func TestLeaseCheckpointStore(t *testing.T) {
	t.Parallel()
	cs := fake.NewClientset(leaseHeldBy("a"))
	var clock time.Time
	now := func() time.Time { return clock }
	clock = time.Unix(1000, 0)
	timers := &manualTimers{}
	chs := []string{"/data/B", "/data/A"}
	newStore := func(id string) *LeaseCheckpointStore {
		s, err := newLeaseCheckpointStore(leaseCheckpointOptions{Client: cs, Namespace: "ns", Name: "omniroute", Identity: id,
			MinGap: 2 * time.Second, now: now, afterFunc: timers.afterFunc}, chs)
		require.NoError(t, err)
		return s
	}
	a := newStore("a")
	annotation := func() string {
		l, err := cs.CoordinationV1().Leases("ns").Get(t.Context(), "omniroute", metav1.GetOptions{})
		require.NoError(t, err)
		return l.Annotations[a.Annotation()]
	}
	ids, err := a.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, ids)

	require.NoError(t, a.Save(t.Context(), map[string]int64{"/data/A": 5}))
	require.JSONEq(t, `{"version":1,"channels":["/data/A","/data/B"],"replayIds":{"/data/A":5}}`, annotation(), "the first save writes at once")

	clock = clock.Add(time.Second)
	require.NoError(t, a.Save(t.Context(), map[string]int64{"/data/A": 6}))
	require.NoError(t, a.Save(t.Context(), map[string]int64{"/data/A": 7, "/data/B": 1}))
	require.Contains(t, annotation(), `"/data/A":5`, "within the gap nothing is written")
	clock = clock.Add(time.Second)
	require.Equal(t, 1, timers.fire(), "one timer for every save within the gap")
	require.Contains(t, annotation(), `{"/data/A":7,"/data/B":1}`, "the newest ids, once the gap passed")

	clock = clock.Add(500 * time.Millisecond)
	require.NoError(t, a.Save(t.Context(), map[string]int64{"/data/A": 8, "/data/B": 1}))
	require.NoError(t, a.Flush(t.Context()))
	require.Contains(t, annotation(), `"/data/A":8`, "flush writes at once")
	require.NoError(t, a.Flush(t.Context()), "nothing pending")

	b := newStore("b")
	got, err := b.Load(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"/data/A": 8, "/data/B": 1}, got, "another pod reads the ids back")
	clock = clock.Add(time.Minute)
	require.NoError(t, b.Save(t.Context(), map[string]int64{"/data/A": 3}), "a failed write is retried, not returned")
	require.Contains(t, annotation(), `"/data/A":8`, "a replica without the lease never writes")
	clock = clock.Add(time.Minute)
	require.Equal(t, 1, timers.fire(), "the failed write is tried again")
	require.Contains(t, annotation(), `"/data/A":8`)
	require.ErrorContains(t, b.Flush(t.Context()), `held by "a", not by this replica (b)`)

	// The holder changes under a: its writes are refused too.
	l, err := cs.CoordinationV1().Leases("ns").Get(t.Context(), "omniroute", metav1.GetOptions{})
	require.NoError(t, err)
	holder := "b"
	l.Spec.HolderIdentity = &holder
	_, err = cs.CoordinationV1().Leases("ns").Update(t.Context(), l, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, a.Save(t.Context(), map[string]int64{"/data/A": 9}))
	require.Error(t, a.Flush(t.Context()))
	require.Contains(t, annotation(), `"/data/A":8`)
	require.Error(t, a.Save(t.Context(), map[string]int64{"/data/A": 9, "/data/X": 1}), "a channel outside the set")

	// Another channel set has its own annotation; a bad document is an error, not a reset.
	other, err := newLeaseCheckpointStore(leaseCheckpointOptions{Client: cs, Namespace: "ns", Name: "omniroute", Identity: "b", now: now, afterFunc: timers.afterFunc}, []string{"/data/A"})
	require.NoError(t, err)
	require.NotEqual(t, a.Annotation(), other.Annotation())
	got, err = other.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
	l.Annotations = map[string]string{other.Annotation(): `{"version":1,"chan`}
	l.ResourceVersion = ""
	_, err = cs.CoordinationV1().Leases("ns").Update(t.Context(), l, metav1.UpdateOptions{})
	require.NoError(t, err)
	_, err = other.Load(t.Context())
	require.ErrorContains(t, err, "annotation "+other.Annotation())

	// No Lease yet: an empty checkpoint.
	none, err := newLeaseCheckpointStore(leaseCheckpointOptions{Client: cs, Namespace: "ns", Name: "absent", Identity: "b"}, chs)
	require.NoError(t, err)
	got, err = none.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
}
