package connector

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// newLeaseClientset is client-go's fake clientset with the API server's optimistic
// concurrency on Leases, which the fake's tracker lacks: each write sets a new
// resourceVersion, and an update carrying another one than the stored Lease's is a conflict.
// Without it a renewal from client-go's cached Lease would silently drop the annotations
// written since.
func newLeaseClientset(objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset()
	var (
		mu sync.Mutex
		rv int64
	)
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	tr := cs.Tracker()
	write := func(l *coordinationv1.Lease, update bool) (*coordinationv1.Lease, error) {
		mu.Lock()
		defer mu.Unlock()
		l = l.DeepCopy()
		if update {
			cur, err := tr.Get(gvr, l.Namespace, l.Name)
			if err != nil {
				return nil, err
			}
			if have := cur.(*coordinationv1.Lease).ResourceVersion; have != l.ResourceVersion {
				return nil, apierrors.NewConflict(gvr.GroupResource(), l.Name,
					errors.New("the object has been modified; please apply your changes to the latest version and try again"))
			}
		}
		rv++
		l.ResourceVersion = strconv.FormatInt(rv, 10)
		var err error
		if update {
			err = tr.Update(gvr, l, l.Namespace)
		} else {
			err = tr.Create(gvr, l, l.Namespace)
		}
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	cs.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l, err := write(a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease), false)
		return true, l, err
	})
	cs.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l, err := write(a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease), true)
		return true, l, err
	})
	for _, o := range objs {
		if _, err := write(o.(*coordinationv1.Lease), false); err != nil {
			panic(err)
		}
	}
	return cs
}

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
	cs := newLeaseClientset(leaseHeldBy("a"))
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

	// A write from a stale copy is a conflict, as on the API server.
	l.Annotations = nil
	_, err = cs.CoordinationV1().Leases("ns").Update(t.Context(), l, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "%v", err)
	l, err = cs.CoordinationV1().Leases("ns").Get(t.Context(), "omniroute", metav1.GetOptions{})
	require.NoError(t, err)

	// Another channel set has its own annotation; a bad document is an error, not a reset.
	other, err := newLeaseCheckpointStore(leaseCheckpointOptions{Client: cs, Namespace: "ns", Name: "omniroute", Identity: "b", now: now, afterFunc: timers.afterFunc}, []string{"/data/A"})
	require.NoError(t, err)
	require.NotEqual(t, a.Annotation(), other.Annotation())
	got, err = other.Load(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
	l.Annotations = map[string]string{other.Annotation(): `{"version":1,"chan`}
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
