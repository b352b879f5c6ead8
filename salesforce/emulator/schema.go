package emulator

import (
	"strings"

	"github.com/omniroute/omniroute/salesforce/emulator/soql"
)

// fieldDef describes one field of an emulated sObject.
type fieldDef struct {
	Name      string
	Type      soql.FieldType
	Create    bool
	Update    bool
	Nillable  bool
	Defaulted bool
	Refs      []string // reference targets
	RelName   string   // parent relationship name ("Owner" for OwnerId)
	Picklist  []string // restricted picklist values
	// typeName is the describe type when it differs from the soql type (e.g. "percent").
	typeName string
}

func (f *fieldDef) required() bool { return f.Create && !f.Nillable && !f.Defaulted }

// objectDef describes one emulated sObject type.
type objectDef struct {
	Name       string
	Label      string
	Prefix     string
	Createable bool
	Updateable bool
	Deletable  bool
	// CDC: the entity is selected for Change Data Capture.
	CDC bool
	// AutoName: Name is an auto-number.
	AutoName bool

	Fields  []*fieldDef
	byLower map[string]*fieldDef
	rels    map[string]*fieldDef // lower-case relationship name -> id field
}

func (o *objectDef) field(name string) (*fieldDef, bool) {
	f, ok := o.byLower[strings.ToLower(name)]
	return f, ok
}

// field flag helpers: "C" createable, "U" updateable, "N" nillable, "D" defaulted.
func fd(name string, t soql.FieldType, flags string, extra ...string) *fieldDef {
	f := &fieldDef{Name: name, Type: t}
	f.Create = strings.Contains(flags, "C")
	f.Update = strings.Contains(flags, "U")
	f.Nillable = strings.Contains(flags, "N")
	f.Defaulted = strings.Contains(flags, "D")
	switch t {
	case soql.Reference:
		f.Refs = extra
		f.RelName = strings.TrimSuffix(name, "Id")
	case soql.Picklist:
		f.Picklist = extra
	}
	return f
}

func percent(f *fieldDef) *fieldDef {
	f.typeName = "percent"
	return f
}

// schema is the emulated org's fixed set of objects.
type schema struct {
	objects  map[string]*objectDef // lower-case name -> def
	byPrefix map[string]*objectDef
	order    []*objectDef
}

func (s *schema) object(name string) (*objectDef, bool) {
	o, ok := s.objects[strings.ToLower(name)]
	return o, ok
}

var workItemTypes = []string{"Case", "LiveChatTranscript", "MessagingSession", "VoiceCall"}

// newSchema builds the object definitions from salesforce-facts.md section 2.
func newSchema() *schema {
	s := &schema{objects: map[string]*objectDef{}, byPrefix: map[string]*objectDef{}}
	add := func(o *objectDef, fields ...*fieldDef) {
		sys := []*fieldDef{
			fd("Id", soql.ID, "D"),
			fd("IsDeleted", soql.Boolean, "D"),
		}
		tail := []*fieldDef{
			fd("CreatedDate", soql.DateTime, "D"),
			fd("CreatedById", soql.Reference, "D", "User"),
			fd("LastModifiedDate", soql.DateTime, "D"),
			fd("LastModifiedById", soql.Reference, "D", "User"),
			fd("SystemModstamp", soql.DateTime, "D"),
		}
		o.Fields = append(append(sys, fields...), tail...)
		o.byLower = map[string]*fieldDef{}
		o.rels = map[string]*fieldDef{}
		for _, f := range o.Fields {
			o.byLower[strings.ToLower(f.Name)] = f
			if f.RelName != "" {
				o.rels[strings.ToLower(f.RelName)] = f
			}
		}
		s.objects[strings.ToLower(o.Name)] = o
		s.byPrefix[o.Prefix] = o
		s.order = append(s.order, o)
	}
	crud := func(name, label, prefix string) *objectDef {
		return &objectDef{Name: name, Label: label, Prefix: prefix, Createable: true, Updateable: true, Deletable: true}
	}
	S, B, I, D, DT, R, P := soql.String, soql.Boolean, soql.Int, soql.Double, soql.DateTime, soql.Reference, soql.Picklist
	routingModels := []string{"ExternalRouting", "LeastActive", "MostAvailable"}
	owner := fd("OwnerId", R, "CUD", "User", "Group")

	add(crud("User", "User", "005"),
		fd("Username", S, "CU"), fd("FirstName", S, "CUN"), fd("LastName", S, "CU"), fd("Name", S, ""),
		fd("Email", S, "CU"), fd("Alias", S, "CUN"), fd("IsActive", B, "CUD"),
		fd("UserType", P, "D", "Standard", "AutomatedProcess"))
	add(crud("Group", "Group", "00G"),
		fd("Name", S, "CU"), fd("DeveloperName", S, "CUD"),
		fd("Type", P, "C", "Queue", "Regular", "Personal", "Role", "Organization"),
		fd("QueueRoutingConfigId", R, "CUN", "QueueRoutingConfig"), fd("Email", S, "CUN"),
		fd("DoesSendEmailToMembers", B, "CUD"), fd("Description", S, "CUN"),
		fd("OwnerId", R, "D", "User"))
	gm := crud("GroupMember", "Group Member", "011")
	gm.Updateable = false
	add(gm, fd("GroupId", R, "C", "Group"), fd("UserOrGroupId", R, "C", "User", "Group"))
	qs := crud("QueueSobject", "Queue Sobject", "03g")
	qs.Updateable = false
	add(qs, fd("QueueId", R, "C", "Group"), fd("SobjectType", P, "C", "Case", "LiveChatTranscript", "MessagingSession", "VoiceCall"))
	add(crud("QueueRoutingConfig", "Routing Configuration", "0K8"),
		fd("DeveloperName", S, "CU"), fd("MasterLabel", S, "CU"),
		fd("RoutingModel", P, "CUN", routingModels...), fd("RoutingPriority", I, "CU"),
		fd("PushTimeout", I, "CUN"), fd("CapacityWeight", D, "CUN"), percent(fd("CapacityPercentage", D, "CUN")),
		fd("DropAdditionalSkillsTimeout", I, "CUN"), fd("IsAttributeBased", B, "CUD"),
		fd("OverflowAssigneeId", R, "CUN", "User", "Group"))
	add(crud("ServiceChannel", "Service Channel", "0N9"),
		fd("DeveloperName", S, "CU"), fd("MasterLabel", S, "CU"),
		fd("RelatedEntity", P, "CU", workItemTypes...),
		fd("CapacityModel", P, "CUD", "StatusBased", "TabBased"), fd("HasAutoAcceptEnabled", B, "CUD"))
	add(crud("ServicePresenceStatus", "Presence Status", "0N5"),
		fd("DeveloperName", S, "CU"), fd("MasterLabel", S, "CU"))
	scs := crud("ServiceChannelStatus", "Service Channel Status", "0N1")
	add(scs, fd("ServiceChannelId", R, "C", "ServiceChannel"), fd("ServicePresenceStatusId", R, "CN", "ServicePresenceStatus"))
	usp := &objectDef{Name: "UserServicePresence", Label: "User Service Presence", Prefix: "0Jd", Deletable: true, CDC: true, AutoName: true}
	add(usp,
		fd("Name", S, ""), fd("UserId", R, "", "User"), fd("ServicePresenceStatusId", R, "N", "ServicePresenceStatus"),
		fd("IsCurrentState", B, "D"), fd("IsAway", B, "D"),
		fd("StatusStartDate", DT, "N"), fd("StatusEndDate", DT, "N"), fd("StatusDuration", I, "N"),
		fd("ConfiguredCapacity", I, "N"), fd("AverageCapacity", D, "N"),
		fd("AtCapacityDuration", I, "N"), fd("IdleDuration", I, "N"),
		fd("OwnerId", R, "D", "User"))
	psr := crud("PendingServiceRouting", "Pending Service Routing", "0JR")
	psr.CDC, psr.AutoName = true, true
	add(psr,
		fd("Name", S, ""), percent(fd("CapacityPercentage", D, "CUN")), fd("CapacityWeight", D, "CUN"),
		fd("CustomRequestedDateTime", DT, "CUN"), fd("DropAdditionalSkillsTimeout", I, "CUN"),
		fd("GroupId", R, "N", "Group"), fd("IsPreferredUserRequired", B, "CD"),
		fd("IsPushAttempted", B, "D"), fd("IsPushed", B, "D"), fd("IsReadyForRouting", B, "CUD"),
		fd("IsTransfer", B, "D"), fd("LastDeclinedAgentSession", S, "N"), owner,
		fd("PreferredUserId", R, "CUN", "User"), fd("PushTimeout", I, "CUN"), fd("QueueId", R, "N", "Group"),
		fd("RoutingModel", P, "CUN", routingModels...), fd("RoutingPriority", I, "CUN"),
		fd("RoutingType", P, "CDN", "QueueBased", "SkillsBased"), fd("SecondaryRoutingPriority", I, "CUN"),
		fd("Serial", I, "N"), fd("ServiceChannelId", R, "C", "ServiceChannel"),
		fd("TransferRequesterId", R, "CUN", "User"), fd("WorkItemId", R, "C", workItemTypes...))
	aw := crud("AgentWork", "Agent Work", "0Bz")
	aw.CDC, aw.AutoName = true, true
	add(aw,
		fd("Name", S, ""), fd("AcceptDateTime", DT, "N"), fd("ActiveTime", I, "N"),
		fd("AssignedDateTime", DT, "N"), fd("CancelDateTime", DT, "N"),
		fd("CapacityModel", P, "N", "StatusBased", "TabBased"),
		percent(fd("CapacityPercentage", D, "CN")), fd("CapacityWeight", D, "CN"),
		fd("CloseDateTime", DT, "N"), fd("DeclineDateTime", DT, "N"), fd("DeclineReason", S, "N"),
		fd("HandleTime", I, "N"), fd("IsPreferredUserRequired", B, "D"),
		fd("OriginalGroupId", R, "N", "Group"), fd("OriginalQueueId", R, "N", "Group"),
		fd("OwnerId", R, "CD", "User", "Group"),
		fd("PendingServiceRoutingId", R, "CN", "PendingServiceRouting"), fd("PreferredUserId", R, "N", "User"),
		fd("PushTimeout", I, "N"), fd("PushTimeoutDateTime", DT, "N"), fd("RequestDateTime", DT, "N"),
		fd("RoutingModel", P, "N", routingModels...), fd("RoutingPriority", I, "N"),
		fd("RoutingType", P, "N", "QueueBased", "SkillsBased"), fd("SecondaryRoutingPriority", I, "N"),
		fd("ServiceChannelId", R, "C", "ServiceChannel"), fd("ShouldSkipCapacityCheck", B, "CD"),
		fd("SpeedToAnswer", I, "N"),
		fd("Status", P, "", "Assigned", "Canceled", "Closed", "Declined", "DeclinedOnPushTimeout", "Opened", "Transferred", "Unavailable"),
		fd("TransferRequesterId", R, "CN", "User"), fd("UserId", R, "C", "User"),
		fd("WorkItemId", R, "C", workItemTypes...))
	add(crud("SkillRequirement", "Skill Requirement", "0Sr"),
		fd("RelatedRecordId", R, "C", "PendingServiceRouting"), fd("SkillId", R, "CU", "Skill"),
		fd("SkillLevel", D, "CUDN"), fd("IsAdditionalSkill", B, "CUD"), fd("SkillPriority", I, "CUN"),
		fd("SkillNumber", S, ""))
	add(crud("Skill", "Skill", "0C5"),
		fd("DeveloperName", S, "CU"), fd("MasterLabel", S, "CU"), fd("Description", S, "CUN"))
	sr := crud("ServiceResource", "Service Resource", "0Hn")
	sr.Deletable = false
	add(sr,
		fd("Name", S, "CU"), fd("RelatedRecordId", R, "CN", "User"), fd("IsActive", B, "CUD"),
		fd("ResourceType", P, "CUD", "T", "D", "C", "S", "A", "P"), fd("Description", S, "CUN"),
		fd("OwnerId", R, "CUD", "User"))
	add(crud("ServiceResourceSkill", "Service Resource Skill", "0Sm"),
		fd("ServiceResourceId", R, "C", "ServiceResource"), fd("SkillId", R, "CU", "Skill"),
		fd("SkillLevel", D, "CUDN"), fd("EffectiveStartDate", DT, "CUD"), fd("EffectiveEndDate", DT, "CUN"),
		fd("SkillNumber", S, ""))
	cs := crud("Case", "Case", "500")
	cs.CDC = true
	add(cs,
		fd("CaseNumber", S, ""), fd("Subject", S, "CUN"), fd("Description", S, "CUN"),
		fd("Status", P, "CUD", "New", "Working", "Escalated", "Closed"),
		fd("Priority", P, "CUDN", "High", "Medium", "Low"),
		fd("Origin", P, "CUN", "Phone", "Email", "Web", "Chat", "Messaging"),
		fd("OwnerId", R, "CUD", "User", "Group"), fd("IsClosed", B, "D"), fd("ClosedDate", DT, "N"),
		fd("Disposition__c", S, "CUN"))
	lct := crud("LiveChatTranscript", "Chat Transcript", "570")
	lct.CDC, lct.AutoName = true, true
	add(lct,
		fd("Name", S, ""), fd("Status", P, "CUN", "Waiting", "InProgress", "Completed", "Missed", "Dropped", "Blocked"),
		fd("OwnerId", R, "CUD", "User", "Group"), fd("CaseId", R, "CUN", "Case"), fd("ChatKey", S, "CUN"),
		fd("Body", S, "CUN"), fd("RequestTime", DT, "CUN"), fd("StartTime", DT, "CUN"), fd("EndTime", DT, "CUN"),
		fd("Disposition__c", S, "CUN"))
	ms := crud("MessagingSession", "Messaging Session", "0Mw")
	ms.CDC, ms.AutoName = true, true
	add(ms,
		fd("Name", S, ""), fd("Status", P, "CUD", "New", "Active", "Consent", "Waiting", "Paused", "Inactive", "Ended", "Error"),
		fd("OwnerId", R, "CUD", "User", "Group"),
		fd("ChannelType", P, "CUN", "EmbeddedMessaging", "Facebook", "Line", "Text", "WhatsApp", "WebChat", "AppleBusinessChat"),
		fd("Origin", P, "CUN", "AgentInitiated", "InboundInitiated", "TriggeredOutbound"),
		fd("CaseId", R, "CUN", "Case"), fd("AcceptTime", DT, "CUN"), fd("StartTime", DT, "CUN"), fd("EndTime", DT, "CUN"),
		fd("Disposition__c", S, "CUN"))
	vc := crud("VoiceCall", "Voice Call", "0LQ")
	vc.CDC, vc.AutoName = true, true
	add(vc,
		fd("Name", S, ""), fd("OwnerId", R, "CUD", "User", "Group"),
		fd("CallType", P, "CUN", "Inbound", "Outbound", "Transfer", "Callback", "Internal"),
		fd("VendorCallKey", S, "CUN"), fd("FromPhoneNumber", S, "CUN"), fd("ToPhoneNumber", S, "CUN"),
		fd("CallStartDateTime", DT, "CUN"), fd("CallEndDateTime", DT, "CUN"), fd("CallDisposition", S, "CUN"))
	add(crud("PushTopic", "Push Topic", "0IF"),
		fd("Name", S, "CU"), fd("Query", S, "CU"), fd("ApiVersion", D, "CU"), fd("IsActive", B, "CUD"),
		fd("Description", S, "CUN"), fd("NotifyForFields", P, "CUD", "All", "Referenced", "Select", "Where"),
		fd("NotifyForOperationCreate", B, "CUD"), fd("NotifyForOperationUpdate", B, "CUD"),
		fd("NotifyForOperationDelete", B, "CUD"), fd("NotifyForOperationUndelete", B, "CUD"),
		fd("NotifyForOperations", P, "D", "All", "Create", "Update", "Extended"))
	return s
}

// soqlSchema adapts the schema to soql.Schema.
func (s *schema) Object(name string) (string, bool) {
	o, ok := s.object(name)
	if !ok {
		return "", false
	}
	return o.Name, true
}

func (s *schema) Field(object, name string) (soql.Field, bool) {
	o, ok := s.object(object)
	if !ok {
		return soql.Field{}, false
	}
	f, ok := o.field(name)
	if !ok {
		return soql.Field{}, false
	}
	return soql.Field{Name: f.Name, Type: f.Type}, true
}

func (s *schema) Relationship(object, name string) (soql.Relationship, bool) {
	o, ok := s.object(object)
	if !ok {
		return soql.Relationship{}, false
	}
	f, ok := o.rels[strings.ToLower(name)]
	if !ok {
		return soql.Relationship{}, false
	}
	return soql.Relationship{Name: f.RelName, IDField: f.Name, Targets: f.Refs}, true
}
