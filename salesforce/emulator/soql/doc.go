// Package soql is the org emulator's SOQL engine: a parser and evaluator for the subset of
// SOQL the REST query resource and PushTopics need, and for the filter expressions of
// platform-event channel members.
//
// Parse turns a statement into a Query (syntax only). Query.Run binds it to a Source's schema
// (unknown objects give INVALID_TYPE, unknown fields and relationships INVALID_FIELD, filter
// values of the wrong type INVALID_FIELD, all with Salesforce's message texts), then filters,
// sorts, applies OFFSET and LIMIT and projects the select list into Rows. Query.Match
// evaluates only the WHERE clause against one record, for PushTopic matching; Query.Bind
// returns the compiled Plan, whose Project, SelectFields and WhereFields serve PushTopic
// notifications. ParseCondition compiles a channel filter expression, evaluated against event
// fields by dotted path.
//
// Supported: field lists with one level of parent relationship (including polymorphic ones
// such as Owner), COUNT(), WHERE with = != <> < <= > >= IN NOT IN LIKE, AND OR NOT and
// parentheses, null, booleans, numbers, strings with escapes, date and datetime literals,
// TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, ORDER BY with ASC/DESC and NULLS
// FIRST/LAST over several keys, LIMIT, OFFSET (at most 2,000). Keywords, object and field
// names are case-insensitive; results use the schema's canonical names.
//
// Semantics chosen to match Salesforce: mixing AND and OR without parentheses is a
// MALFORMED_QUERY ("Parentheses are required whenever you mix the operators"); text compares,
// matches LIKE and sorts case-insensitively; null equals only null, so != and NOT IN are true
// for null fields while <, >, LIKE are false; nulls sort first unless NULLS LAST; a date
// literal filters only date fields and a datetime literal only datetime fields; a 15-character
// id literal matches the 18-character id it abbreviates; an empty string on an id field means null.
// Relative date literals use the day boundaries of the location of Options.Now. A polymorphic
// relationship (more than one target, like Owner) offers only the fields of Salesforce's Name
// entity (Id, Name, Type, Username, ...); a target without the field gives null, except Type,
// which falls back to the parent's object type ("User"). FROM Group works although GROUP is a
// reserved word.
//
// Rejected with a clear MALFORMED_QUERY message: semi- and anti-joins, child sub-queries,
// aggregate and other functions, GROUP BY, HAVING, TYPEOF, WITH, FOR, USING SCOPE,
// INCLUDES/EXCLUDES, bind variables, relationship paths deeper than one level, and date
// literals other than those listed.
//
// The package never does I/O, never logs, and reads the clock only through Options.Now (and
// only when a query uses a relative date literal). It never panics on any input string.
package soql
