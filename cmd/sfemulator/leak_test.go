package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: a cancelled run must stop the
// server and the emulator.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
