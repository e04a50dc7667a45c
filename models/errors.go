package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Error codes form the small vocabulary the rest of the system speaks. The
// api package maps each code to one HTTP status in one place.
const (
	ENOTFOUND    = "not_found"   // the thing does not exist, or is not the caller's
	ECONFLICT    = "conflict"    // a uniqueness rule would be broken
	EINVALID     = "invalid"     // the input breaks a validation rule
	EUNAVAILABLE = "unavailable" // a dependency (database) is down; retry later
	EINTERNAL    = "internal"    // anything else: a bug or an unexpected failure
)

// Error is a domain error with a stable code and a message that is safe to
// show to the caller.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a domain error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first domain error in err's chain,
// EINTERNAL for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of a domain error, or a
// generic sentence for internal errors, whose text must never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error."
}

// translate turns storage errors into domain errors so no caller outside
// this package ever sees a GORM or driver error type. The original error stays
// in the chain for logs.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return &Error{Code: ENOTFOUND, Message: what + " not found."}
	case errors.Is(err, gorm.ErrDuplicatedKey) || isUniqueViolation(err):
		return &Error{Code: ECONFLICT, Message: what + " already exists."}
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", &Error{Code: EUNAVAILABLE, Message: "The database is unavailable, try again later."}, err)
	}
	return err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	// modernc.org/sqlite reports constraint failures by message.
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isUnavailable reports whether err means the database could not be reached
// (as opposed to a query it rejected), so callers can answer 503 and retry.
func isUnavailable(err error) bool {
	// A connection dropped mid-query (a database restart) surfaces as an
	// EOF from the driver, not as a network error.
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: admin shutdown, crash, cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY") ||
		strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection refused")
}

// isRetryableTx reports whether PostgreSQL aborted a transaction that would
// succeed if run again: 40001 serialization failure, 40P01 deadlock.
func isRetryableTx(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
