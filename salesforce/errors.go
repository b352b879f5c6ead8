package salesforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/omniroute/omniroute/salesforce/internal/retry"
)

// Salesforce error codes the client branches on.
const (
	CodeInvalidSessionID     = "INVALID_SESSION_ID"
	CodeRequestLimitExceeded = "REQUEST_LIMIT_EXCEEDED"
	CodeUnableToLockRow      = "UNABLE_TO_LOCK_ROW"
	CodeEntityIsDeleted      = "ENTITY_IS_DELETED"
	CodeNotFound             = "NOT_FOUND"
)

// APIError is a Salesforce REST error response. Every non-2xx response is
// turned into one by classify, which is the only place that decides whether
// an error is worth retrying.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the Salesforce errorCode of the first error (e.g.
	// MALFORMED_QUERY), or the HTTP status text when the body carried none.
	Code string
	// Message is the message of the first error.
	Message string
	// Fields are the fields the first error names, if any.
	Fields []string
	// Errors holds every error of the response body, in order.
	Errors []ErrorDetail
	// Retryable says whether the same request may succeed if sent again
	// later: 5xx, 429, UNABLE_TO_LOCK_ROW, and REQUEST_LIMIT_EXCEEDED when
	// it is not the daily allocation.
	Retryable bool
	// RetryAfter is the delay the server asked for in Retry-After, if any.
	RetryAfter time.Duration
}

// ErrorDetail is one entry of a Salesforce error array. Top-level REST
// errors name their code errorCode; collection results name it statusCode.
type ErrorDetail struct {
	Code    string   `json:"errorCode"`
	Message string   `json:"message"`
	Fields  []string `json:"fields,omitempty"`
}

// UnmarshalJSON accepts both errorCode and statusCode.
func (d *ErrorDetail) UnmarshalJSON(b []byte) error {
	var raw struct {
		ErrorCode  string   `json:"errorCode"`
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	d.Code = raw.ErrorCode
	if d.Code == "" {
		d.Code = raw.StatusCode
	}
	d.Message, d.Fields = raw.Message, raw.Fields
	return nil
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("salesforce: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if len(e.Fields) > 0 {
		b.WriteString(" (fields ")
		b.WriteString(strings.Join(e.Fields, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// IsSessionExpired reports whether err says the access token is no longer
// valid (HTTP 401 or INVALID_SESSION_ID).
func IsSessionExpired(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Code == CodeInvalidSessionID)
}

// IsNotFound reports whether err is a 404 (NOT_FOUND, ENTITY_IS_DELETED, ...).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// classify builds the APIError for a non-2xx response. body is the
// (bounded) response body, header the response headers and limitExhausted
// whether Sforce-Limit-Info says the daily allocation is used up.
func classify(status int, header http.Header, body []byte, limitExhausted bool) *APIError {
	e := &APIError{Status: status}
	var list []ErrorDetail
	if err := json.Unmarshal(body, &list); err == nil && len(list) > 0 {
		e.Errors = list
	} else {
		// Some endpoints answer with a single object (and OAuth with
		// error/error_description); accept both shapes.
		var one struct {
			ErrorCode        string   `json:"errorCode"`
			Message          string   `json:"message"`
			Fields           []string `json:"fields"`
			Error            string   `json:"error"`
			ErrorDescription string   `json:"error_description"`
		}
		if json.Unmarshal(body, &one) == nil {
			switch {
			case one.ErrorCode != "":
				e.Errors = []ErrorDetail{{Code: one.ErrorCode, Message: one.Message, Fields: one.Fields}}
			case one.Error != "":
				e.Errors = []ErrorDetail{{Code: one.Error, Message: one.ErrorDescription}}
			}
		}
	}
	if len(e.Errors) > 0 {
		e.Code, e.Message, e.Fields = e.Errors[0].Code, e.Errors[0].Message, e.Errors[0].Fields
	}
	if e.Code == "" {
		e.Code = strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	}
	e.RetryAfter = retry.After(header.Get("Retry-After"), time.Now())

	switch {
	case status >= 500, status == http.StatusTooManyRequests:
		e.Retryable = true
	case e.Code == CodeUnableToLockRow:
		e.Retryable = true
	case e.Code == CodeRequestLimitExceeded:
		// The same code covers the rolling 24-hour allocation (which will
		// not recover within any sensible retry window) and the
		// concurrent long-running request limit (which does).
		e.Retryable = !limitExhausted && !strings.Contains(e.Message, "TotalRequests")
	}
	return e
}

// TokenError is a failed OAuth token request.
type TokenError struct {
	// Status is the HTTP status of the token response (0 if none arrived).
	Status int
	// Code is the OAuth error (invalid_grant, invalid_client_id, ...).
	Code string
	// Description is the OAuth error_description.
	Description string
}

func (e *TokenError) Error() string {
	s := fmt.Sprintf("salesforce: token request: %d %s", e.Status, e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}
