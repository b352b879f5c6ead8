package emulator

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: Close must stop the timer
// loop, the CometD server and every held long-poll.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
