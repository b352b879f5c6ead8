package jsonscan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNumberEndAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"0", "-0", "7", "-12", "10.5", "1e9", "1E+9", "2.5e-3", "123456789012345678901234567890",
		"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "--1", "0x10", "1.e5", "-.5",
	} {
		end, ok := NumberEnd([]byte(in), 0)
		whole := ok && end == len(in)
		require.Equal(t, json.Valid([]byte(in)), whole, "%q", in)
	}
	end, ok := NumberEnd([]byte(`[12.5,`), 1)
	require.True(t, ok)
	require.Equal(t, 5, end)
}

func TestIsHex(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		want := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		require.Equal(t, want, IsHex(byte(c)), "%q", rune(c))
	}
}
