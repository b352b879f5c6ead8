package salesforce

import (
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/omniroute/omniroute/salesforce/internal/jsonscan"
)

// A small JSON scanner for the hot path of event decoding. It finds the
// extent of values without building them, so a record field costs a
// sub-slice of the input instead of a decoded value. It accepts exactly
// the JSON grammar (RFC 8259) for the values it skips; strings it returns
// are unescaped with strconv-compatible rules.

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	b []byte
	i int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return errSyntax
	}
	s.i++
	return nil
}

// object calls f for each member of the object at the cursor, with the
// cursor on the member's value; f must consume the value.
func (s *scanner) object(f func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return errSyntax
		}
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := f(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// rawString consumes a string and returns its contents without the
// quotes, still escaped. Keys we look for never contain escapes.
func (s *scanner) rawString() ([]byte, error) {
	start := s.i + 1
	end, err := s.skipString()
	if err != nil {
		return nil, err
	}
	return s.b[start : end-1], nil
}

// skipString consumes the string at the cursor and returns the index just
// past its closing quote.
func (s *scanner) skipString() (int, error) {
	i := s.i + 1
	for i < len(s.b) {
		c := s.b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return s.i, nil
		case c == '\\':
			if i+1 >= len(s.b) {
				return 0, errSyntax
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.b) {
					return 0, errSyntax
				}
				for _, h := range s.b[i+2 : i+6] {
					if !jsonscan.IsHex(h) {
						return 0, errSyntax
					}
				}
				i += 6
			default:
				return 0, errSyntax
			}
		case c < 0x20:
			return 0, errSyntax
		default:
			i++
		}
	}
	return 0, errSyntax
}

// str consumes a JSON string and returns it unescaped.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", errSyntax
	}
	start := s.i
	raw, err := s.rawString()
	if err != nil {
		return "", err
	}
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			// Rare: let strconv handle escapes and validate UTF-8 the
			// way encoding/json would (invalid bytes become U+FFFD).
			u, err := strconv.Unquote(string(s.b[start:s.i]))
			if err != nil {
				return unescapeJSON(raw)
			}
			return u, nil
		}
	}
	return string(raw), nil
}

// unescapeJSON handles escapes strconv.Unquote rejects (\/ and lone
// surrogates) by going through the general decoder.
func unescapeJSON(raw []byte) (string, error) {
	buf := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			buf = append(buf, c)
			continue
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			buf = append(buf, raw[i])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, _ := strconv.ParseUint(string(raw[i+1:i+5]), 16, 32)
			i += 4
			rr := rune(r)
			if rr >= 0xD800 && rr < 0xDC00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				r2, _ := strconv.ParseUint(string(raw[i+3:i+7]), 16, 32)
				if r2 >= 0xDC00 && r2 < 0xE000 {
					rr = (rr-0xD800)<<10 + (rune(r2) - 0xDC00) + 0x10000
					i += 6
				}
			}
			if rr >= 0xD800 && rr < 0xE000 {
				rr = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, rr)
		default:
			return "", errSyntax
		}
	}
	return string([]rune(string(buf))), nil
}

// strOrNull is str that also accepts null (returning "").
func (s *scanner) strOrNull() (string, error) {
	if s.peek() == 'n' {
		return "", s.literal("null")
	}
	return s.str()
}

// int64 consumes an integer (a number without fraction or exponent, or
// one whose fraction is zero such as 1.0), or null as 0.
func (s *scanner) int64() (int64, error) {
	if s.peek() == 'n' {
		return 0, s.literal("null")
	}
	start := s.i
	if err := s.skipNumber(); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	if err == nil {
		return n, nil
	}
	f, ferr := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	if ferr != nil || f != float64(int64(f)) {
		return 0, errSyntax
	}
	return int64(f), nil
}

// strings consumes an array of strings, or null.
// strIn is strOrNull, except that a value found in table is returned as
// the table's copy, so common values allocate nothing. Table keys are
// plain ASCII, so a raw match is what str would return.
func (s *scanner) strIn(table map[string]string) (string, error) {
	if s.peek() == '"' {
		save := s.i
		if raw, err := s.rawString(); err == nil {
			if v, ok := table[string(raw)]; ok {
				return v, nil
			}
		}
		s.i = save
	}
	return s.strOrNull()
}

func (s *scanner) strings() ([]string, error) { return s.stringsIn(nil) }

// stringsIn is strings, with the elements found in table returned as the
// table's copies.
func (s *scanner) stringsIn(table map[string]string) ([]string, error) {
	switch s.peek() {
	case 'n':
		return nil, s.literal("null")
	case '[':
	default:
		return nil, errSyntax
	}
	s.i++
	out := []string{}
	if s.peek() == ']' {
		s.i++
		return out, nil
	}
	for {
		var (
			v   string
			err error
		)
		if s.peek() == 'n' {
			err = errSyntax // str refuses null: so does an element
		} else {
			v, err = s.strIn(table)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, nil
		default:
			return nil, errSyntax
		}
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}

// skipNumber consumes a number per the JSON grammar.
func (s *scanner) skipNumber() error {
	end, ok := jsonscan.NumberEnd(s.b, s.i)
	if !ok {
		return errSyntax
	}
	s.i = end
	return nil
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// skip consumes any value and returns its raw bytes.
func (s *scanner) skip() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skipValue(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	switch s.peek() {
	case '"':
		_, err := s.skipString()
		return err
	case '{':
		return s.object(func([]byte) error { return s.skipValue(depth + 1) })
	case '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return errSyntax
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.skipNumber()
	}
}
