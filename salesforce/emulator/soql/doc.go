// Package soql is the org emulator's SOQL engine: a parser and evaluator for the subset of
// SOQL the REST query resource and PushTopics need, and for the filter expressions of
// platform-event channel members.
//
// Parse turns a statement into a Query (syntax only). Query.Run binds it to a Source's schema
// (unknown objects give INVALID_TYPE, unknown fields and relationships INVALID_FIELD, filter
// values of the wrong type INVALID_FIELD, all with Salesforce's message texts), then filters,
// sorts, applies LIMIT and projects the select list into Rows. Query.Match
// evaluates only the WHERE clause against one record, for PushTopic matching; Query.Bind
// returns the compiled Plan, whose Project, SelectFields and WhereFields serve PushTopic
// notifications. ParseCondition compiles a channel filter expression, evaluated against event
// fields by dotted path.
//
// The subset is frozen at what omniroute and its tests send (docs/emulator.md, "SOQL
// subset"): field lists with one level of parent relationship (including polymorphic ones such
// as Owner), COUNT(), WHERE with =, != and IN, and <, <=, > and >= on id fields only (the
// reconcile reads large tables in ranges of Id, as PK chunking does), AND and OR with
// parentheses, null, booleans, numbers and strings with escapes, ORDER BY with ASC/DESC over
// several keys, and LIMIT.
// Keywords, object and field names are case-insensitive; results use the schema's canonical
// names. The query and queryAll resources share the grammar.
//
// Semantics chosen to match Salesforce: mixing AND and OR without parentheses is a
// MALFORMED_QUERY ("Parentheses are required whenever you mix the operators"); text compares
// and sorts case-insensitively; ids (id and reference fields) compare and sort
// case-sensitively by their first 15 characters in base-62 order (0-9, A-Z, a-z: ASCII), so
// a 15-character id equals its 18-character form; null equals only null, so != is true for null fields, and is in no range;
// nulls sort first in either direction; a 15-character id literal matches the 18-character id
// it abbreviates; an empty string on an id field means null; a date or datetime field can only be
// compared with null. A polymorphic relationship (more than one target, like Owner) offers only
// the fields of Salesforce's Name entity (Id, Name, Type, Username, ...); a target without the
// field gives null, except Type, which falls back to the parent's object type ("User"). FROM
// Group works although GROUP is a reserved word. COUNT() with ORDER BY is a MALFORMED_QUERY
// ("Ordered field must be grouped or aggregated: <field>"), as the SOQL reference says it
// cannot be used.
//
// Valid SOQL outside the subset is a MALFORMED_QUERY in Salesforce's layout (the statement,
// a caret, "ERROR at Row:r:Column:c") whose reason names the feature and ends ": not in the
// emulator's SOQL subset (what omniroute sends)": <, <=, > and >= on any field but an id or
// with null, and in channel filter expressions, <>, LIKE,
// NOT, NOT IN, date, datetime and relative date literals, OFFSET, NULLS FIRST/LAST, semi- and
// anti-joins, child sub-queries, aggregate and other functions, GROUP BY, HAVING, TYPEOF,
// WITH, FOR, USING SCOPE, INCLUDES/EXCLUDES, ALL ROWS, bind variables and relationship paths
// deeper than one level.
//
// The package never does I/O, never logs and never reads a clock. It never panics on any
// input string.
package soql
