package emulator

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

type timerKind int

const (
	timerPushTimeout timerKind = iota
	timerAutoRespond
	timerAutoClose
)

type timer struct {
	at   time.Time
	kind timerKind
	aw   string
	seq  uint64
}

// timerQueue is a min-heap on (at, seq).
type timerQueue struct {
	items []timer
	seq   uint64
}

func (q *timerQueue) Len() int { return len(q.items) }
func (q *timerQueue) Less(i, j int) bool {
	if !q.items[i].at.Equal(q.items[j].at) {
		return q.items[i].at.Before(q.items[j].at)
	}
	return q.items[i].seq < q.items[j].seq
}
func (q *timerQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *timerQueue) Push(x any)    { q.items = append(q.items, x.(timer)) }
func (q *timerQueue) Pop() any {
	n := len(q.items)
	x := q.items[n-1]
	q.items = q.items[:n-1]
	return x
}

// addTimer queues a timer and wakes the timer loop. Callers hold e.mu.
func (e *orgModel) addTimer(t timer) {
	e.timers.seq++
	t.seq = e.timers.seq
	heap.Push(&e.timers, t)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// RunTimers fires every push timeout and simulated-agent action due at Now(). The background
// loop calls it on real time; tests with an injected clock call it after moving the clock.
func (e *orgModel) RunTimers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for e.timers.Len() > 0 && !e.timers.items[0].at.After(now) {
		t := heap.Pop(&e.timers).(timer)
		aw, ok := e.st.get(t.aw)
		if !ok {
			continue
		}
		switch t.kind {
		case timerPushTimeout:
			if aw.str("Status") == StatusAssigned {
				_ = e.decline(aw, StatusDeclinedOnPushTimeout, "")
			}
		case timerAutoRespond:
			if aw.str("Status") != StatusAssigned {
				continue
			}
			if e.auto.DeclineRate > 0 && e.rng.Float64() < e.auto.DeclineRate {
				_ = e.decline(aw, StatusDeclined, "auto")
			} else {
				_ = e.accept(aw)
			}
		case timerAutoClose:
			if aw.str("Status") == StatusOpened {
				_ = e.closeWork(aw)
			}
		}
	}
}

func (e *orgModel) nextTimer() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.timers.Len() == 0 {
		return time.Time{}, false
	}
	return e.timers.items[0].at, true
}

func (e *Emulator) timerLoop() {
	defer e.wg.Done()
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		d := time.Hour
		if at, ok := e.nextTimer(); ok {
			d = max(at.Sub(e.now()), 0)
		}
		tm.Reset(d)
		select {
		case <-e.done:
			return
		case <-e.wake:
		case <-tm.C:
			e.RunTimers()
		}
	}
}

// AutoOptions makes simulated agents answer their work by themselves (demo and load tests).
type AutoOptions struct {
	// Enabled turns the behaviour on.
	Enabled bool `json:"enabled"`
	// AcceptAfter is how long after assignment the agent answers (accept or decline).
	AcceptAfter time.Duration `json:"-"`
	// DeclineRate is the share of work declined instead of accepted (0..1).
	DeclineRate float64 `json:"declineRate"`
	// CloseAfter is how long after accepting the agent closes the work (0: never).
	CloseAfter time.Duration `json:"-"`
	// Users limits the behaviour to these usernames (empty: every agent).
	Users []string `json:"users"`
}

// autoJSON is the control API form of AutoOptions (durations in milliseconds).
type autoJSON struct {
	Enabled       bool     `json:"enabled"`
	AcceptAfterMs int64    `json:"acceptAfterMs"`
	DeclineRate   float64  `json:"declineRate"`
	CloseAfterMs  int64    `json:"closeAfterMs"`
	Users         []string `json:"users"`
}

// MarshalJSON renders durations in milliseconds.
func (a AutoOptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(autoJSON{a.Enabled, a.AcceptAfter.Milliseconds(), a.DeclineRate, a.CloseAfter.Milliseconds(), a.Users})
}

// UnmarshalJSON reads durations in milliseconds.
func (a *AutoOptions) UnmarshalJSON(b []byte) error {
	var j autoJSON
	// Unknown keys are refused, as everywhere in the control API.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("decode auto options: %w", err)
	}
	*a = AutoOptions{Enabled: j.Enabled, AcceptAfter: time.Duration(j.AcceptAfterMs) * time.Millisecond,
		DeclineRate: j.DeclineRate, CloseAfter: time.Duration(j.CloseAfterMs) * time.Millisecond, Users: j.Users}
	return nil
}

// SetAuto replaces the simulated-agent behaviour; it applies to work assigned from now on.
func (e *orgModel) SetAuto(a AutoOptions) {
	e.mu.Lock()
	e.auto = a
	e.mu.Unlock()
}

func (e *orgModel) autoFor(aw *record) bool {
	if !e.auto.Enabled {
		return false
	}
	if len(e.auto.Users) == 0 {
		return true
	}
	u, ok := e.st.get(aw.str("UserId"))
	return ok && slices.ContainsFunc(e.auto.Users, func(n string) bool { return lower(n) == lower(u.str("Username")) })
}

func (e *orgModel) armAuto(now time.Time, aw *record) {
	if e.autoFor(aw) {
		e.addTimer(timer{at: now.Add(e.auto.AcceptAfter), kind: timerAutoRespond, aw: aw.id})
	}
}

func (e *orgModel) armAutoClose(now time.Time, aw *record) {
	if e.autoFor(aw) && e.auto.CloseAfter > 0 {
		e.addTimer(timer{at: now.Add(e.auto.CloseAfter), kind: timerAutoClose, aw: aw.id})
	}
}
