// Package retry holds the one retry schedule that the salesforce REST client and the bayeux
// stream client share: github.com/cenkalti/backoff/v4's exponential backoff with its default
// jitter (each wait spread over ±50 %), and the server's Retry-After.
package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff returns an exponential schedule: about initial, doubling up to maxWait, jittered, with
// no limit on the time spent (the caller bounds it).
func Backoff(initial, maxWait time.Duration) *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(maxWait),
		backoff.WithMaxElapsedTime(0),
	)
}

// AtLimit returns the schedule after a limit error (503 too busy, 429, a daily or concurrency
// limit): Salesforce asks for minutes, so it starts at 30 s and quadruples: about 30 s, 2 min,
// 8 min, then 10 min.
func AtLimit() *backoff.ExponentialBackOff {
	b := Backoff(30*time.Second, 10*time.Minute)
	b.Multiplier = 4
	return b
}

// After reads a Retry-After header: delay seconds or an HTTP date; 0 when absent or past.
func After(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
