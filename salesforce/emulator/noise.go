package emulator

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// presenceStats accumulates the capacity figures of an agent's current UserServicePresence
// row: AverageCapacity (time-weighted capacity in use since StatusStartDate), IdleDuration
// (seconds with nothing in use) and AtCapacityDuration (seconds at full capacity).
type presenceStats struct {
	uspID    string
	start    time.Time
	last     time.Time
	load     float64 // capacity in use since last
	loadSecs float64 // integral of load over time
	idle     float64 // seconds
	full     float64 // seconds
}

// startPresenceStats begins the figures of a new current presence row. Callers hold e.mu.
func (e *Emulator) startPresenceStats(userID, uspID string, now time.Time) {
	e.pstats[userID] = &presenceStats{uspID: uspID, start: now, last: now, load: e.userLoad(userID)}
}

// trackLoad brings an agent's presence figures up to now with the capacity in use before this
// change, then takes the capacity in use after it. With write it stores the figures on the
// current UserServicePresence row (an UPDATE routing does not read), as Salesforce does when
// work is accepted or closed. Callers hold e.mu.
func (e *Emulator) trackLoad(t *tx, userID string, write bool) {
	ps := e.pstats[userID]
	if ps == nil {
		return
	}
	capacity := float64(e.capacity[userID])
	if dt := t.now.Sub(ps.last).Seconds(); dt > 0 {
		ps.loadSecs += ps.load * dt
		switch {
		case ps.load <= 1e-9:
			ps.idle += dt
		case ps.load >= capacity-1e-9:
			ps.full += dt
		}
		ps.last = t.now
	}
	ps.load = e.userLoad(userID)
	if !write {
		return
	}
	usp, ok := e.st.get(ps.uspID)
	if !ok {
		return
	}
	avg := ps.load
	if el := t.now.Sub(ps.start).Seconds(); el > 0 {
		avg = ps.loadSecs / el
	}
	t.update(usp, map[string]any{
		"AverageCapacity":    math.Round(avg*100) / 100,
		"IdleDuration":       int64(math.Round(ps.idle)),
		"AtCapacityDuration": int64(math.Round(ps.full)),
	})
}

// SetNoise sets the noise rate: after each change the org commits, every record it changed
// gets, with probability rate, a further UPDATE that changes nothing routing reads (see
// makeNoise), in its own transaction. 0 turns noise off.
func (e *Emulator) SetNoise(rate float64) error {
	if rate < 0 || rate > 1 || math.IsNaN(rate) {
		return fmt.Errorf("set noise rate %v: want 0..1: %w", rate, ErrInvalid)
	}
	e.mu.Lock()
	e.noiseRate = rate
	e.mu.Unlock()
	return nil
}

// NoiseRequest is the body of POST /emulator/v1/noise.
type NoiseRequest struct {
	Rate float64 `json:"rate"`
}

// makeNoise follows a committed transaction with noise updates of the records it changed.
// Callers hold e.mu.
func (e *Emulator) makeNoise(t *tx) {
	if e.noiseRate <= 0 || t.noise {
		return
	}
	seen := map[string]bool{}
	for _, c := range t.changes {
		if c.typ == "DELETE" || !c.obj.CDC {
			continue
		}
		for _, id := range c.ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			if e.rng.Float64() >= e.noiseRate {
				continue
			}
			r, ok := e.st.get(id)
			if !ok {
				continue
			}
			n := e.begin("", "")
			n.noise = true
			e.noiseUpdate(n, r)
			e.commit(n)
		}
	}
}

// noiseUpdate is one change a router must ignore: a Case subject edited, a chat transcript's
// body growing, an AgentWork's ActiveTime ticking, the presence figures refreshed, or a plain
// re-save (Serial and LastModifiedDate only, for a PSR).
func (e *Emulator) noiseUpdate(t *tx, r *record) {
	switch r.obj.Name {
	case "Case":
		subj := r.str("Subject")
		if s, ok := strings.CutSuffix(subj, " (edited)"); ok {
			subj = s
		} else {
			subj += " (edited)"
		}
		t.update(r, map[string]any{"Subject": subj})
	case "LiveChatTranscript":
		t.update(r, map[string]any{"Body": r.str("Body") + "."})
	case "AgentWork":
		t.update(r, map[string]any{"ActiveTime": r.int("ActiveTime") + 1})
	case "UserServicePresence":
		if uid := r.str("UserId"); r.boolean("IsCurrentState") && e.pstats[uid] != nil {
			before := len(t.changes)
			e.trackLoad(t, uid, true)
			if len(t.changes) > before {
				return
			}
		}
		t.touch(r)
	default:
		t.touch(r)
	}
}
