package bayeux

import (
	"math/rand/v2"
	"time"
)

// Default backoff bounds: the first retry waits about a second, later ones
// double up to two minutes (Salesforce asks for minutes on "503::Server is
// too busy" and limit errors).
const (
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 2 * time.Minute
)

// NewBackoff returns an exponential backoff: attempt 1 waits about initial,
// each further attempt doubles it, capped at max. jitter returns a number in
// [0, 1) and spreads each wait over [d/2, d); nil means no jitter (the wait
// is exactly d). Attempts below 1 count as 1.
func NewBackoff(initial, maxWait time.Duration, jitter func() float64) func(attempt int) time.Duration {
	if initial <= 0 {
		initial = DefaultBackoffInitial
	}
	if maxWait < initial {
		maxWait = initial
	}
	return func(attempt int) time.Duration {
		if attempt < 1 {
			attempt = 1
		}
		d := initial
		for i := 1; i < attempt && d < maxWait; i++ {
			d *= 2
		}
		d = min(d, maxWait)
		if jitter == nil {
			return d
		}
		j := jitter()
		if j < 0 || j >= 1 {
			j = 0
		}
		return d/2 + time.Duration(float64(d/2)*j)
	}
}

// defaultBackoff is NewBackoff with the default bounds and random jitter.
func defaultBackoff() func(int) time.Duration {
	return NewBackoff(DefaultBackoffInitial, DefaultBackoffMax, rand.Float64)
}
