package emulator

import (
	"strings"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// makeID builds an 18-character Salesforce id: the 3-character key prefix, a fixed
// "pod" part, a base-62 sequence number and the 3-character case-safe checksum.
func makeID(prefix string, seq uint64) string {
	var b [15]byte
	copy(b[:3], prefix)
	copy(b[3:8], "5g000")
	for i := 14; i >= 8; i-- {
		b[i] = base62[seq%62]
		seq /= 62
	}
	return string(b[:]) + idChecksum(string(b[:]))
}

// idChecksum is Salesforce's case-safe suffix of a 15-character id.
func idChecksum(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var out [3]byte
	for chunk := range 3 {
		n := 0
		for i := range 5 {
			c := id15[chunk*5+i]
			if c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		out[chunk] = alphabet[n]
	}
	return string(out[:])
}

// validIDShape reports whether s looks like a 15- or 18-character Salesforce id.
func validIDShape(s string) bool {
	if len(s) != 15 && len(s) != 18 {
		return false
	}
	for i := range len(s) {
		if !strings.ContainsRune(base62, rune(s[i])) {
			return false
		}
	}
	return true
}

// normalizeID turns a 15-character id into its 18-character form; other strings are returned
// unchanged.
func normalizeID(s string) string {
	if len(s) == 15 && validIDShape(s) {
		return s + idChecksum(s)
	}
	return s
}
