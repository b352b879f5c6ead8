package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/omniroute/omniroute/salesforce"
)

// Elector decides which replica leads (OMNIROUTE_LEADER_ELECTION). Only the leader subscribes,
// routes and writes; the daemon and its tests see this interface, never client-go. The
// Kubernetes implementation is LeaseElector.
type Elector interface {
	// Run campaigns until ctx ends. Once this replica leads, lead runs with a context that
	// ends when ctx ends or the leadership is lost; Run gives the leadership up only after
	// lead has returned, so nothing the leader does outlives its lease. lead runs at most once
	// per Run. Run returns nil when ctx ended, lead's error when lead failed, and
	// ErrLeadershipLost when the lease could not be renewed while lead ran.
	Run(ctx context.Context, lead func(ctx context.Context) error) error
	// Checkpoints returns the replay id store for a stream of these channels, shared by every
	// candidate: a new leader resumes where the last one committed. Save succeeds only while
	// this replica holds the leadership.
	Checkpoints(channels []string) (salesforce.CheckpointStore, error)
	// Writable says whether this replica may send an AgentWork insert now: it leads and its
	// lease is fresh on its own clock. Checked just before each insert leaves.
	Writable() bool
}

// ErrLeadershipLost is returned by Elector.Run when the leader could not renew its lease in
// time. The leader has stopped routing by then; the daemon exits (the pod restarts as a warm
// standby), which is client-go's advice and the common pattern of Kubernetes controllers.
var ErrLeadershipLost = errors.New("leadership lost: the lease was not renewed in time")

// LeaseElectorOptions configure a LeaseElector.
type LeaseElectorOptions struct {
	// Client reaches the API server: in the cluster (NewInClusterElector), or client-go's
	// fake clientset in tests. Required.
	Client kubernetes.Interface
	// Namespace and Name name the Lease (coordination.k8s.io/v1). Required.
	Namespace, Name string
	// Identity is this candidate's name in the Lease: the pod's name. Required.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's (LeaderElectionConfig);
	// RetryPeriod is also the shortest gap between two replay id writes.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Logger receives the election's logs (client-go's too). Nil discards.
	Logger *slog.Logger
}

// LeaseElector is the Elector on a Kubernetes Lease: client-go's
// tools/leaderelection with a resourcelock.LeaseLock and ReleaseOnCancel, so a replica that
// stops gives the Lease up at once and a standby takes over within one retry period; a
// replica that dies is replaced once LeaseDuration has passed without renewal.
//
// The leader keeps the stream's replay ids in an annotation of the same Lease
// (Checkpoints), so a new pod on any node resumes the stream where the last leader stopped.
type LeaseElector struct {
	opts  LeaseElectorOptions
	log   *slog.Logger
	fence atomic.Pointer[releaseFence] // the lock of the running Run
}

// Writable says whether this replica may send a write to Salesforce now: it leads, and its
// last renewal began less than RetryPeriod+RenewDeadline ago on its own clock, the latest
// moment client-go tells a leader that cannot renew to stop. Checked just before an insert
// leaves (fenceWrites), it keeps a leader resumed from a freeze from sending the inserts it
// had decided before, whatever order its goroutines wake in; calls already sent get maxDrain
// to be answered, which ends before a standby may take the Lease.
func (e *LeaseElector) Writable() bool {
	f := e.fence.Load()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.renewedAt.IsZero() && time.Since(f.renewedAt) < e.opts.RetryPeriod+e.opts.RenewDeadline
}

// NewLeaseElector checks the options and returns the elector; it makes no request.
func NewLeaseElector(o LeaseElectorOptions) (*LeaseElector, error) {
	var missing []string
	if o.Client == nil {
		missing = append(missing, "client")
	}
	if o.Namespace == "" {
		missing = append(missing, "namespace")
	}
	if o.Name == "" {
		missing = append(missing, "lease name")
	}
	if o.Identity == "" {
		missing = append(missing, "identity")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("configure leader election: no %s", strings.Join(missing, ", "))
	}
	if o.LeaseDuration <= o.RenewDeadline+o.RetryPeriod || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0 {
		return nil, fmt.Errorf("configure leader election: need lease duration (%s) > renew deadline (%s) + retry period (%s), renew deadline > retry period > 0",
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &LeaseElector{opts: o, log: o.Logger.With("component", "leader", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)}, nil
}

// serviceAccountNamespace is where Kubernetes mounts the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// NewInClusterElector builds the LeaseElector of a pod from cfg: the API server from
// rest.InClusterConfig (the pod's service account), the namespace from OMNIROUTE_POD_NAMESPACE
// or the service account's, the identity from OMNIROUTE_POD_NAME or the host name.
func NewInClusterElector(cfg Config, logger *slog.Logger) (*LeaseElector, error) {
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: the Kubernetes API: %w", env("Leader", "Election"), err)
	}
	rc.UserAgent = "omniroute"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: the Kubernetes client: %w", env("Leader", "Election"), err)
	}
	ns := cfg.PodNamespace
	if ns == "" {
		b, err := os.ReadFile(serviceAccountNamespace)
		if err != nil {
			return nil, fmt.Errorf("%s: unset, and the service account's namespace cannot be read: %w", env("PodNamespace"), err)
		}
		ns = strings.TrimSpace(string(b))
	}
	id := cfg.PodName
	if id == "" {
		if id, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("%s: unset, and the host name cannot be read: %w", env("PodName"), err)
		}
	}
	l := cfg.Leader
	return NewLeaseElector(LeaseElectorOptions{Client: cs, Namespace: ns, Name: l.Lease, Identity: id,
		LeaseDuration: l.LeaseDuration.Duration, RenewDeadline: l.RenewDeadline.Duration, RetryPeriod: l.RetryPeriod.Duration, Logger: logger})
}

// Identity is this candidate's name in the Lease.
func (e *LeaseElector) Identity() string { return e.opts.Identity }

// Checkpoints returns the Lease annotation store of the channels' replay ids.
func (e *LeaseElector) Checkpoints(channels []string) (salesforce.CheckpointStore, error) {
	return newLeaseCheckpointStore(leaseCheckpointOptions{
		Client: e.opts.Client, Namespace: e.opts.Namespace, Name: e.opts.Name, Identity: e.opts.Identity,
		MinGap: e.opts.RetryPeriod, Logger: e.log,
	}, channels)
}

// Run implements Elector with client-go's LeaderElector. client-go runs OnStartedLeading in
// a goroutine it does not wait for, and releases the Lease as soon as its context ends; so
// Run gives client-go a context of its own and cancels it only once lead has returned: the
// Lease is released (ReleaseOnCancel) after the last write, never during one.
func (e *LeaseElector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	ectx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElect()
	ectx = klog.NewContext(ectx, logr.FromSlogHandler(e.log.Handler()))

	var (
		mu       sync.Mutex
		stopping bool // ctx ended: do not start leading
		started  bool
		leadErr  error
	)
	leadDone := make(chan struct{})
	lock := &releaseFence{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.opts.Namespace, Name: e.opts.Name},
		Client:     e.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.opts.Identity},
	}}
	e.fence.Store(lock)
	defer e.fence.CompareAndSwap(lock, nil)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            e.opts.Name,
		LeaseDuration:   e.opts.LeaseDuration,
		RenewDeadline:   e.opts.RenewDeadline,
		RetryPeriod:     e.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				if stopping {
					mu.Unlock()
					lock.allowRelease()
					cancelElect()
					return
				}
				started = true
				mu.Unlock()
				defer close(leadDone)
				// lctx ends when client-go stops renewing; ctx is the daemon's stop.
				rctx, cancel := context.WithCancel(lctx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				e.log.Info("leading")
				err := lead(rctx)
				keep := errors.Is(err, errKeepLease)
				if keep {
					e.log.Warn("keeping the lease until it expires", "reason", err)
					err = nil
				}
				mu.Lock()
				leadErr = err
				mu.Unlock()
				if lctx.Err() == nil && !keep {
					lock.allowRelease() // nothing runs under the Lease any more
				}
				cancelElect() // release the Lease now that nothing runs under it
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				e.log.Info("leader observed", "leader", id, "self", id == e.opts.Identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configure leader election: %w", err)
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		mu.Lock()
		stopping = true
		s := started
		mu.Unlock()
		if s {
			<-leadDone // lead sees ctx end too; the Lease goes once it returned
		}
		cancelElect()
	}()
	e.log.Info("standing by: campaigning for the lease")
	le.Run(ectx)
	mu.Lock()
	s := started
	mu.Unlock()
	if s {
		<-leadDone
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case !started:
		return nil // ctx ended before this replica led
	case leadErr != nil:
		e.log.Info("stopped leading: lease released", "err", leadErr)
		return leadErr
	case ctx.Err() != nil:
		e.log.Info("stopped leading: lease released")
		return nil
	default:
		e.log.Warn("leadership lost: stopped routing")
		return ErrLeadershipLost
	}
}

// errReleaseFenced is releaseFence's refusal, which client-go logs.
var errReleaseFenced = errors.New("lease not released: this replica's work may still run, or another replica holds the lease; it expires by itself")

// releaseFence is the Lease lock under client-go's LeaderElector, which gives the Lease up
// only when the work under it has stopped and the Lease is still this replica's.
//
// client-go releases (ReleaseOnCancel) in two cases. On a stop, after Run cancelled its
// context, which Run does only once lead returned: allowed. And when a renewal failed for the
// renew deadline: then it releases BEFORE it cancels lead's context, while the deposed leader
// still routes and its writer drains, so a standby would route beside it; and its release
// (tryRelease) updates whatever Lease it just read as long as it observed itself as holder
// before, so a leader resumed from a freeze clears its successor's holder. Both are refused
// here: a lost Lease is left to expire, LeaseDuration after its last renewal, by which time the
// deposed leader has stopped (maxDrain).
type releaseFence struct {
	resourcelock.Interface

	mu         sync.Mutex
	mayRelease bool      // lead returned with the Lease still renewed
	lastHolder string    // the holder in the last read of the Lease
	renewedAt  time.Time // when the last successful acquisition or renewal began; zero once released
}

// Create creates the Lease held by this replica (the first acquisition) and notes when.
func (f *releaseFence) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	began := time.Now()
	err := f.Interface.Create(ctx, r)
	f.noteRenewal(r, began, err)
	return err
}

func (f *releaseFence) noteRenewal(r resourcelock.LeaderElectionRecord, began time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil && r.HolderIdentity == f.Identity():
		f.renewedAt = began
	case err == nil && r.HolderIdentity == "":
		f.renewedAt = time.Time{}
	}
}

func (f *releaseFence) allowRelease() {
	f.mu.Lock()
	f.mayRelease = true
	f.mu.Unlock()
}

// Get reads the Lease and notes its holder.
func (f *releaseFence) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := f.Interface.Get(ctx)
	f.mu.Lock()
	f.lastHolder = ""
	if err == nil && r != nil {
		f.lastHolder = r.HolderIdentity
	}
	f.mu.Unlock()
	return r, raw, err
}

// Update writes the record; a release (no holder) only when allowed and the Lease just read is
// this replica's. The update carries that read's resourceVersion, so a Lease taken over in
// between is a conflict, and client-go reads it again.
func (f *releaseFence) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if r.HolderIdentity == "" {
		f.mu.Lock()
		ok := f.mayRelease && f.lastHolder == f.Identity()
		f.mu.Unlock()
		if !ok {
			return errReleaseFenced
		}
	}
	began := time.Now()
	err := f.Interface.Update(ctx, r)
	f.noteRenewal(r, began, err)
	return err
}

// errNotWritable is fenceWrites' refusal of an insert.
var errNotWritable = errors.New("agentwork insert not sent: this replica's lease lapsed (leader election)")

// fenceWrites returns a copy of hc (nil: http.DefaultClient) whose AgentWork inserts (POST to
// sobjects/AgentWork or composite/sobjects) leave only while writable says so; a refused one
// fails before anything is sent, and the writer takes it as an insert of unknown outcome.
// Other requests pass.
func fenceWrites(hc *http.Client, writable func() bool) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = writeFence{next: next, writable: writable}
	return &c
}

type writeFence struct {
	next     http.RoundTripper
	writable func() bool
}

func (f writeFence) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/sobjects/AgentWork") || strings.HasSuffix(r.URL.Path, "/composite/sobjects")) &&
		!f.writable() {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errNotWritable
	}
	return f.next.RoundTrip(r)
}

// errKeepLease, returned by lead, stops leading like nil but keeps the Lease: it expires
// LeaseDuration after the last renewal instead of going to a standby at once. The core returns
// it when its writer cut a call at the end of the drain: that insert may still land, and a
// successor must not read AgentWork before it has.
var errKeepLease = errors.New("lease kept until it expires: an AgentWork call was cut at the end of the drain")

// CondLeader is the readiness condition of leader election: true while this replica leads.
// New adds it only with OMNIROUTE_LEADER_ELECTION, so a standby's /readyz is false and the
// Service sends agents to the leader.
const CondLeader = "leader"

// leaderGauge is omniroute_leader: 1 while this replica routes (with leader election: while
// it holds the Lease; without: while the core routes), 0 otherwise.
type leaderGauge struct{ g prometheus.Gauge }

func newLeaderGauge(reg prometheus.Registerer) *leaderGauge {
	return &leaderGauge{g: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "leader",
		Help: "1 while this replica leads and routes (with leader election: holds the Lease), 0 while it stands by or starts.",
	})}
}

// checkpoints returns the stream's replay id store: the Lease's with leader election, else the
// file store under OMNIROUTE_STATE_DIR, else none (ids kept in memory).
func (c *Connector) checkpoints(channels []string) (salesforce.CheckpointStore, error) {
	switch {
	case c.elector != nil:
		return c.elector.Checkpoints(channels)
	case c.cfg.StateDir != "":
		return NewFileCheckpointStore(c.cfg.StateDir, channels)
	}
	return nil, nil
}

// lead is the core under leader election: a warm standby (mapping loaded, org read and
// checked, /healthz beating) until the Elector makes this replica leader; then route
// (subscribe from the stored replay ids, reconcile, route) until the daemon stops or the
// leadership is lost, which stops the routing at once and ends the daemon
// (ErrLeadershipLost).
func (c *Connector) lead(ctx context.Context, log *slog.Logger, org OrgInfo, hb *Heartbeat) error {
	var leading atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a standby beats here; the leader's route loop beats itself
		t := time.NewTicker(coreBeat)
		defer t.Stop()
		for {
			if !leading.Load() {
				hb.Beat()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	log.Info("standby: waiting for the leadership")
	return c.elector.Run(ctx, func(lctx context.Context) error {
		leading.Store(true)
		hb.Beat()
		c.ready.Set(CondLeader, true)
		c.leader.g.Set(1)
		log.Info("leader: subscribing, reconciling and routing")
		defer func() {
			c.leader.g.Set(0)
			c.ready.Set(CondLeader, false)
			hb.Beat()
			leading.Store(false)
		}()
		if err := c.route(lctx, log, org, hb); err != nil {
			return err
		}
		if c.drainCut.Load() {
			return errKeepLease
		}
		return nil
	})
}

// maxDrain is how long the writer may finish its calls in flight once routing stops. With
// leader election: a leader that last renewed at t0 tries again at t0+RetryPeriod and is told
// to stop RenewDeadline later (client-go's renew loop); a standby may take over at
// t0+LeaseDuration, counted on its own clock from when it saw that renewal (so clock skew
// between nodes does not matter; the Lease's renewTime is not used). The drain takes what is
// left: LeaseDuration - RenewDeadline - RetryPeriod, which the configuration keeps positive
// (3s with the defaults), so that a deposed leader's last insert is answered before its
// successor routes. Without leader election, no cap.
func (c *Connector) maxDrain() time.Duration {
	if c.elector == nil {
		return 0
	}
	l := c.cfg.Leader
	return l.LeaseDuration.Duration - l.RenewDeadline.Duration - l.RetryPeriod.Duration
}
