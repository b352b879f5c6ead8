package salesforce

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: the token
// source, the retry loop and the stream must all stop with their context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
