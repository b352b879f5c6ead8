package soql

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDate // YYYY-MM-DD...: recognised only to be rejected
	tComma
	tLParen
	tRParen
	tColon
	tOp // = and != (also <> < <= > >=, recognised only to be rejected)
)

type token struct {
	kind tokKind
	pos  int    // byte offset in the statement
	text string // source text (for identifiers: the dotted path as written)
	str  string // decoded string literal
}

// lexError is a positioned syntax problem; the parser turns it into an *Error.
type lexError struct {
	pos    int
	reason string
}

// singleCharTokens are the one-character tokens; the zero kind (tEOF) means "not one of them".
var singleCharTokens = [256]tokKind{',': tComma, '(': tLParen, ')': tRParen, ':': tColon, '=': tOp}

// lex splits s into tokens. It never panics on any input.
func lex(s string) ([]token, *lexError) {
	var toks []token
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			toks = append(toks, token{kind: tEOF, pos: len(s)})
			return toks, nil
		}
		c := s[i]
		start := i
		switch {
		case isIdentStart(c):
			i = scanIdent(s, i)
			for i+1 < len(s) && s[i] == '.' && isIdentStart(s[i+1]) {
				i = scanIdent(s, i+1)
			}
			if i < len(s) && s[i] == '.' {
				return nil, &lexError{pos: i, reason: unexpected(s, i)}
			}
			toks = append(toks, token{kind: tIdent, pos: start, text: s[start:i]})
		case c == '\'':
			str, end, err := scanString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
			toks = append(toks, token{kind: tString, pos: start, text: s[start:i], str: str})
		case isDigit(c) || ((c == '-' || c == '+' || c == '.') && i+1 < len(s) && (isDigit(s[i+1]) || (s[i+1] == '.' && c != '.'))):
			if tok, end, ok := scanDate(s, i); ok {
				i = end
				toks = append(toks, tok)
				continue
			}
			end, ok := scanNumber(s, i)
			if !ok {
				return nil, &lexError{pos: start, reason: unexpected(s, start)}
			}
			i = end
			toks = append(toks, token{kind: tNumber, pos: start, text: s[start:i]})
		case singleCharTokens[c] != 0:
			i++
			toks = append(toks, token{kind: singleCharTokens[c], pos: start, text: s[start:i]})
		case c == '!':
			if i+1 < len(s) && s[i+1] == '=' {
				i += 2
				toks = append(toks, token{kind: tOp, pos: start, text: "!="})
				continue
			}
			return nil, &lexError{pos: i, reason: unexpected(s, i)}
		case c == '<':
			i++
			op := "<"
			if i < len(s) && (s[i] == '=' || s[i] == '>') {
				op += s[i : i+1]
				i++
			}
			toks = append(toks, token{kind: tOp, pos: start, text: op})
		case c == '>':
			i++
			op := ">"
			if i < len(s) && s[i] == '=' {
				op = ">="
				i++
			}
			toks = append(toks, token{kind: tOp, pos: start, text: op})
		default:
			return nil, &lexError{pos: i, reason: unexpected(s, i)}
		}
	}
}

func unexpected(s string, i int) string {
	if i >= len(s) {
		return "unexpected token: <EOF>"
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return "unexpected token: '" + strconv.QuoteToASCII(s[i:i+1]) + "'"
	}
	return "unexpected token: '" + string(r) + "'"
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '_' }

func scanIdent(s string, i int) int {
	for i < len(s) && isIdentPart(s[i]) {
		i++
	}
	return i
}

// scanString decodes a single-quoted SOQL string starting at s[i] == '\”. Escapes: \n \r \t
// \b \f \" \' \\ \uXXXX, and \_ \% which stay escaped (they only mean something to LIKE; an
// '=' comparison sees the backslash, as in Salesforce).
func scanString(s string, i int) (string, int, *lexError) {
	start := i
	i++
	var b strings.Builder
	for i < len(s) {
		c := s[i]
		switch c {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, &lexError{pos: start, reason: "Invalid string literal '" + s[start:] + "'. Illegal character sequence '\\' in string literal."}
			}
			e := s[i+1]
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '"', '\'', '\\':
				b.WriteByte(e)
			case '_', '%':
				b.WriteByte('\\')
				b.WriteByte(e)
			case 'u':
				if i+6 > len(s) {
					return "", 0, &lexError{pos: i, reason: "Invalid string literal: illegal unicode escape"}
				}
				n, err := strconv.ParseUint(s[i+2:i+6], 16, 32)
				if err != nil {
					return "", 0, &lexError{pos: i, reason: "Invalid string literal: illegal unicode escape '\\u" + s[i+2:i+6] + "'"}
				}
				b.WriteRune(rune(n))
				i += 6
				continue
			default:
				seq := s[i : i+2]
				if !utf8.ValidString(seq) {
					seq = strconv.QuoteToASCII(seq)
				}
				return "", 0, &lexError{pos: i, reason: "Invalid string literal. Illegal character sequence '" + seq + "' in string literal."}
			}
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, &lexError{pos: start, reason: "unterminated string literal"}
}

// scanNumber accepts [+-]digits[.digits] and [+-].digits.
func scanNumber(s string, i int) (int, bool) {
	if s[i] == '-' || s[i] == '+' {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (isIdentPart(s[i]) || s[i] == '.') {
		return 0, false
	}
	return i, true
}

// scanDate recognises a token that starts like a date or dateTime literal (YYYY-MM-DD...):
// the frozen subset has none, so the parser rejects it with a clear message.
func scanDate(s string, i int) (token, int, bool) {
	if !matchDigits(s, i, "dddd-dd-dd") {
		return token{}, 0, false
	}
	end := wordEnd(s, i+10)
	return token{kind: tDate, pos: i, text: s[i:end]}, end, true
}

func wordEnd(s string, i int) int {
	for i < len(s) && !isSpace(s[i]) && s[i] != ')' && s[i] != ',' {
		i++
	}
	return i
}

// matchDigits checks s[i:] against a pattern where 'd' is a digit and other bytes are literal.
func matchDigits(s string, i int, pat string) bool {
	if i < 0 || i+len(pat) > len(s) {
		return false
	}
	for k := 0; k < len(pat); k++ {
		c := s[i+k]
		if pat[k] == 'd' {
			if !isDigit(c) {
				return false
			}
		} else if c != pat[k] {
			return false
		}
	}
	return true
}
