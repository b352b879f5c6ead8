package soql

import (
	"strconv"
	"strings"
)

// Error codes returned in Error.Code. They are Salesforce's own REST error codes; every one maps
// to HTTP 400 on the query resource.
const (
	// CodeMalformedQuery: the statement does not parse, or uses SOQL outside the emulator's
	// frozen subset.
	CodeMalformedQuery = "MALFORMED_QUERY"
	// CodeInvalidField: an unknown field or relationship, or a filter value of the wrong type.
	CodeInvalidField = "INVALID_FIELD"
	// CodeInvalidType: an unknown sObject in FROM.
	CodeInvalidType = "INVALID_TYPE"
	// CodeInvalidFilterOperator: an ID literal that is not a Salesforce id.
	CodeInvalidFilterOperator = "INVALID_QUERY_FILTER_OPERATOR"
)

// Error is a query error in Salesforce's shape: Code is the REST errorCode and Message the
// REST message. For statements, Message follows Salesforce's layout: a newline, the offending
// line of the statement, a caret under the offending token, "ERROR at Row:r:Column:c" and the
// reason, e.g.
//
//	\nSELECT Id, Foo FROM Case\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Case'. ...
//
// Callers branch on Code with errors.As.
type Error struct {
	Code    string
	Message string
	// Row and Column locate the offending token (1-based); 0 when the error has no position.
	Row, Column int
}

// Error returns "CODE: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errAt builds an Error positioned at byte offset pos of stmt, in Salesforce's layout.
func errAt(code, stmt string, pos int, reason string) *Error {
	if pos < 0 {
		pos = 0
	}
	if pos > len(stmt) {
		pos = len(stmt)
	}
	row := 1 + strings.Count(stmt[:pos], "\n")
	lineStart := strings.LastIndexByte(stmt[:pos], '\n') + 1
	lineEnd := strings.IndexByte(stmt[pos:], '\n')
	if lineEnd < 0 {
		lineEnd = len(stmt)
	} else {
		lineEnd += pos
	}
	col := 1 + len([]rune(stmt[lineStart:pos]))
	var b strings.Builder
	b.WriteByte('\n')
	b.WriteString(stmt[lineStart:lineEnd])
	b.WriteByte('\n')
	b.WriteString(strings.Repeat(" ", col-1))
	b.WriteString("^\nERROR at Row:")
	b.WriteString(strconv.Itoa(row))
	b.WriteString(":Column:")
	b.WriteString(strconv.Itoa(col))
	b.WriteByte('\n')
	b.WriteString(reason)
	return &Error{Code: code, Message: b.String(), Row: row, Column: col}
}

// Salesforce's reason texts.
func noSuchColumn(field, entity string) string {
	return "No such column '" + field + "' on entity '" + entity + "'. If you are attempting to use a custom field, " +
		"be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
}

func unsupportedType(object string) string {
	return "sObject type '" + object + "' is not supported. If you are attempting to use a custom object, " +
		"be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
}

func unknownRelationship(rel string) string {
	return "Didn't understand relationship '" + rel + "' in field path. If you are attempting to use a custom relationship, " +
		"be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
}

func wrongFilterType(field string, t FieldType) string {
	if t.quoted() {
		return "value of filter criterion for field '" + field + "' must be of type " + t.String() + " and should be enclosed in quotes"
	}
	return "value of filter criterion for field '" + field + "' must be of type " + t.String() + " and should not be enclosed in quotes"
}
