package soql_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// memSource is a tiny in-memory org for tests: a schema with case-insensitive names and
// records kept in insertion order.
type memSource struct {
	objects map[string]string                       // lower -> canonical
	fields  map[string]map[string]soql.Field        // object -> lower -> field
	rels    map[string]map[string]soql.Relationship // object -> lower -> relationship
	recs    map[string][]*memRec                    // object -> records in scan order
	byID    map[string]*memRec
	seq     map[string]int
}

type memRec struct {
	typ, id string
	vals    map[string]any
}

func (r *memRec) Type() string { return r.typ }
func (r *memRec) ID() string   { return r.id }
func (r *memRec) Value(f string) (any, bool) {
	v, ok := r.vals[f]
	return v, ok
}

func newMemSource() *memSource {
	return &memSource{
		objects: map[string]string{},
		fields:  map[string]map[string]soql.Field{},
		rels:    map[string]map[string]soql.Relationship{},
		recs:    map[string][]*memRec{},
		byID:    map[string]*memRec{},
		seq:     map[string]int{},
	}
}

func (s *memSource) addObject(name string, fields ...soql.Field) {
	s.objects[strings.ToLower(name)] = name
	m := map[string]soql.Field{"id": {Name: "Id", Type: soql.ID}}
	for _, f := range fields {
		m[strings.ToLower(f.Name)] = f
	}
	s.fields[name] = m
	s.rels[name] = map[string]soql.Relationship{}
}

func (s *memSource) addRel(object string, r soql.Relationship) {
	s.rels[object][strings.ToLower(r.Name)] = r
	s.fields[object][strings.ToLower(r.IDField)] = soql.Field{Name: r.IDField, Type: soql.Reference}
}

var prefixes = map[string]string{
	"Case": "500", "User": "005", "Group": "00G", "PendingServiceRouting": "0JR", "ServiceChannel": "0N9",
}

// insert adds a record and returns its 18-character id.
func (s *memSource) insert(object string, vals map[string]any) string {
	s.seq[object]++
	id := fmt.Sprintf("%s%012dAAA", prefixes[object], s.seq[object])
	if vals == nil {
		vals = map[string]any{}
	}
	vals["Id"] = id
	r := &memRec{typ: object, id: id, vals: vals}
	s.recs[object] = append(s.recs[object], r)
	s.byID[id] = r
	return id
}

func (s *memSource) Object(name string) (string, bool) {
	c, ok := s.objects[strings.ToLower(name)]
	return c, ok
}

func (s *memSource) Field(object, name string) (soql.Field, bool) {
	f, ok := s.fields[object][strings.ToLower(name)]
	return f, ok
}

func (s *memSource) Relationship(object, name string) (soql.Relationship, bool) {
	r, ok := s.rels[object][strings.ToLower(name)]
	return r, ok
}

func (s *memSource) Scan(object string, fn func(soql.Record) bool) {
	for _, r := range s.recs[object] {
		if !fn(r) {
			return
		}
	}
}

func (s *memSource) Get(id string) (soql.Record, bool) {
	r, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return r, true
}

// Dataset ids, filled by newOrg.
type org struct {
	src                    *memSource
	alice, bob, queue      string
	chat, phone            string
	c1, c2, c3, c4, c5, c6 string
	psr1, psr2, psr3       string
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// newOrg builds the test org:
//
//	Case  Subject        Status    Priority Owner  IsEscalated Amount__c Count__c DueDate__c  CreatedDate
//	c1    Printer jam    New       High     alice  true        10.5      3        2026-11-20  2026-11-22T09:00Z
//	c2    printer fire   Working   Low      queue  false       -2        0        nil         2026-11-21T23:30Z
//	c3    nil            New       nil      bob    false       nil       7        2026-11-22  2026-11-15T12:00Z
//	c4    50% off_sale   Closed    Medium   nil    true        100       1        2026-12-01  2026-11-22T23:59:59Z
//	c5    O'Brien\Case   Escalated High     alice  nil         0         nil      2026-11-23  nil
//	c6    Ünïcode ÉTÉ    New       Low      queue  false       3.25      2        2026-10-01  2026-11-23T00:00Z
func newOrg() *org {
	s := newMemSource()
	s.addObject("User", soql.Field{Name: "Name", Type: soql.String}, soql.Field{Name: "Username", Type: soql.String},
		soql.Field{Name: "IsActive", Type: soql.Boolean}, soql.Field{Name: "Alias", Type: soql.String})
	s.addObject("Group", soql.Field{Name: "Name", Type: soql.String}, soql.Field{Name: "DeveloperName", Type: soql.String},
		soql.Field{Name: "Type", Type: soql.Picklist})
	s.addObject("ServiceChannel", soql.Field{Name: "DeveloperName", Type: soql.String}, soql.Field{Name: "MasterLabel", Type: soql.String})
	s.addObject("Case",
		soql.Field{Name: "Subject", Type: soql.String}, soql.Field{Name: "Status", Type: soql.Picklist},
		soql.Field{Name: "Priority", Type: soql.Picklist}, soql.Field{Name: "IsEscalated", Type: soql.Boolean},
		soql.Field{Name: "Amount__c", Type: soql.Double}, soql.Field{Name: "Count__c", Type: soql.Int},
		soql.Field{Name: "DueDate__c", Type: soql.Date}, soql.Field{Name: "CreatedDate", Type: soql.DateTime})
	s.addRel("Case", soql.Relationship{Name: "Owner", IDField: "OwnerId", Targets: []string{"User", "Group"}})
	s.addObject("PendingServiceRouting",
		soql.Field{Name: "RoutingModel", Type: soql.Picklist}, soql.Field{Name: "IsReadyForRouting", Type: soql.Boolean},
		soql.Field{Name: "IsPushed", Type: soql.Boolean}, soql.Field{Name: "CapacityWeight", Type: soql.Double},
		soql.Field{Name: "CreatedDate", Type: soql.DateTime})
	s.addRel("PendingServiceRouting", soql.Relationship{Name: "Owner", IDField: "OwnerId", Targets: []string{"User", "Group"}})
	s.addRel("PendingServiceRouting", soql.Relationship{Name: "ServiceChannel", IDField: "ServiceChannelId", Targets: []string{"ServiceChannel"}})
	s.addRel("PendingServiceRouting", soql.Relationship{Name: "WorkItem", IDField: "WorkItemId", Targets: []string{"Case"}})

	o := &org{src: s}
	o.alice = s.insert("User", map[string]any{"Name": "Alice Agent", "Username": "alice@x", "IsActive": true, "Alias": "ali"})
	o.bob = s.insert("User", map[string]any{"Name": "bob builder", "Username": "bob@x", "IsActive": false, "Alias": nil})
	o.queue = s.insert("Group", map[string]any{"Name": "Support EN", "DeveloperName": "Support_EN", "Type": "Queue"})
	o.chat = s.insert("ServiceChannel", map[string]any{"DeveloperName": "Chat", "MasterLabel": "Chat"})
	o.phone = s.insert("ServiceChannel", map[string]any{"DeveloperName": "Phone", "MasterLabel": "Phone"})

	o.c1 = s.insert("Case", map[string]any{"Subject": "Printer jam", "Status": "New", "Priority": "High", "OwnerId": o.alice,
		"IsEscalated": true, "Amount__c": 10.5, "Count__c": int64(3), "DueDate__c": day("2026-11-20"), "CreatedDate": ts("2026-11-22T09:00:00Z")})
	o.c2 = s.insert("Case", map[string]any{"Subject": "printer fire", "Status": "Working", "Priority": "Low", "OwnerId": o.queue,
		"IsEscalated": false, "Amount__c": -2.0, "Count__c": int64(0), "DueDate__c": nil, "CreatedDate": ts("2026-11-21T23:30:00Z")})
	o.c3 = s.insert("Case", map[string]any{"Subject": nil, "Status": "New", "Priority": nil, "OwnerId": o.bob,
		"IsEscalated": false, "Amount__c": nil, "Count__c": int64(7), "DueDate__c": day("2026-11-22"), "CreatedDate": ts("2026-11-15T12:00:00Z")})
	o.c4 = s.insert("Case", map[string]any{"Subject": "50% off_sale", "Status": "Closed", "Priority": "Medium", "OwnerId": nil,
		"IsEscalated": true, "Amount__c": 100.0, "Count__c": int64(1), "DueDate__c": day("2026-12-01"), "CreatedDate": ts("2026-11-22T23:59:59Z")})
	o.c5 = s.insert("Case", map[string]any{"Subject": `O'Brien\Case`, "Status": "Escalated", "Priority": "High", "OwnerId": o.alice,
		"IsEscalated": nil, "Amount__c": 0.0, "Count__c": nil, "DueDate__c": day("2026-11-23"), "CreatedDate": nil})
	o.c6 = s.insert("Case", map[string]any{"Subject": "Ünïcode ÉTÉ", "Status": "New", "Priority": "Low", "OwnerId": o.queue,
		"IsEscalated": false, "Amount__c": 3.25, "Count__c": int64(2), "DueDate__c": day("2026-10-01"), "CreatedDate": ts("2026-11-23T00:00:00Z")})

	o.psr1 = s.insert("PendingServiceRouting", map[string]any{"RoutingModel": "ExternalRouting", "IsReadyForRouting": true, "IsPushed": false,
		"CapacityWeight": 1.0, "OwnerId": o.queue, "ServiceChannelId": o.chat, "WorkItemId": o.c1, "CreatedDate": ts("2026-11-22T10:00:00Z")})
	o.psr2 = s.insert("PendingServiceRouting", map[string]any{"RoutingModel": "ExternalRouting", "IsReadyForRouting": false, "IsPushed": true,
		"CapacityWeight": 2.0, "OwnerId": o.alice, "ServiceChannelId": o.phone, "WorkItemId": o.c2, "CreatedDate": ts("2026-11-22T10:00:01Z")})
	o.psr3 = s.insert("PendingServiceRouting", map[string]any{"RoutingModel": "LeastActive", "IsReadyForRouting": true, "IsPushed": false,
		"CapacityWeight": nil, "OwnerId": "00G999999999999AAA", "ServiceChannelId": nil, "WorkItemId": o.c3, "CreatedDate": ts("2026-11-22T10:00:02Z")})
	return o
}
