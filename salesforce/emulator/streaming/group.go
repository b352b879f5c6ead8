package streaming

import (
	"encoding/json"
	"log/slog"
)

// Message is one message of an event published with PublishMessages: its "data" member and
// the channels it goes to.
type Message struct {
	Channels []string
	Data     json.RawMessage
	// Replay, when set, renders the data member again each time the message is replayed to a
	// new subscription (a subscribe from -2 or a stored replay id). Salesforce adds enriched
	// change-event fields at delivery, so a replayed enriched event carries the values current
	// at replay time. It runs under the Server's lock: it must be quick and must not call
	// back into the Server. Invalid JSON is replaced by the published Data.
	Replay func() json.RawMessage
}

// PublishMessages publishes several messages that share one replay id, as Salesforce delivers
// the single-record events it splits out of one grouped change event. build receives the id;
// it runs while publishing is serialised, so it must not call back into the Server. Messages
// go out in the order given; a channel may receive several of them. A subscribe that replays
// from the shared id starts after every message carrying it.
func (s *Server) PublishMessages(build func(replayID int64) []Message) int64 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	id := s.lastID + 1
	s.mu.Unlock()

	msgs := build(id)
	type out struct {
		name string
		msg  []byte
	}
	type encoded struct {
		ev     *event
		outs   []out
		replay func() json.RawMessage
	}
	now := s.opts.Now()
	all := make([]encoded, 0, len(msgs))
	for _, m := range msgs {
		data := m.Data
		if !json.Valid(data) {
			s.log.Warn("bayeux publish: event data is not valid JSON, sending null", slog.Int64("replay_id", id))
			data = json.RawMessage("null")
		}
		enc := encoded{ev: &event{id: id, published: now, data: data}, replay: m.Replay}
		for _, ch := range m.Channels {
			dup := false
			for _, o := range enc.outs {
				dup = dup || o.name == ch
			}
			if !dup {
				enc.outs = append(enc.outs, out{name: ch, msg: messageBytes(ch, data)})
			}
		}
		all = append(all, enc)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastID = id
	for _, enc := range all {
		s.published++
		ev := enc.ev
		for _, o := range enc.outs {
			st := s.channel(o.name)
			st.pruneBefore(now.Add(-st.retention))
			r := retained{ev: ev, msg: o.msg}
			if enc.replay != nil {
				name, replay := o.name, enc.replay
				r.render = func() []byte { return messageBytes(name, replay()) }
			}
			st.log = append(st.log, r)
			ev.refs++
			ev.chans = append(ev.chans, st)
			fields := sobjectFields{data: ev.data}
			for c, subs := range st.subs {
				if !anyMatches(subs, &fields) {
					continue
				}
				c.queue = append(c.queue, delivery{ch: st, id: id, msg: o.msg})
				if len(c.queue) > s.opts.MaxQueue {
					s.overflow(c)
					continue
				}
				if c.poll != nil {
					s.release(c, wakeEvent)
				}
			}
		}
		if ev.refs > 0 {
			s.fifo = append(s.fifo, ev)
		}
	}
	for len(s.fifo)-s.fifoStart > s.opts.MaxEvents {
		s.popFIFO()
	}
	s.cleanFIFO()
	s.maybeSweep(now)
	return id
}

// messageBytes is one event message on the wire: {"channel":…,"data":…}. Invalid data
// becomes null.
func messageBytes(channel string, data json.RawMessage) []byte {
	if !json.Valid(data) {
		data = json.RawMessage("null")
	}
	name, _ := json.Marshal(channel)
	msg := make([]byte, 0, len(name)+len(data)+20)
	msg = append(msg, `{"channel":`...)
	msg = append(msg, name...)
	msg = append(msg, `,"data":`...)
	msg = append(msg, data...)
	msg = append(msg, '}')
	return msg
}

// replayMsg is the message to queue when r is replayed: rendered again when it has a Replay
// hook, else the bytes encoded at publish.
func (r retained) replayMsg() []byte {
	if r.render != nil {
		return r.render()
	}
	return r.msg
}
