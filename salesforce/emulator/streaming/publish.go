// Publishing: replay ids, retention per channel and across channels, delivery to queues.

package streaming

import (
	"encoding/json"
	"time"
)

// channel returns the state of ch, creating it. Callers hold s.mu.
func (s *Server) channel(ch string) *channelState {
	st := s.channels[ch]
	if st == nil {
		ret := time.Duration(0)
		if s.opts.Retention != nil {
			ret = s.opts.Retention(ch)
		}
		if ret <= 0 {
			ret = defaultRetention(ch)
		}
		st = &channelState{name: ch, retention: ret, subs: make(map[*client][]*subscription), horizon: s.globalHorizon}
		s.channels[ch] = st
	}
	return st
}

// Publish stores one event on the given channels, assigns it the next replay id (one id shared
// by those channels, strictly increasing across the server), and delivers it to current
// subscribers. build receives the replay id and returns the message's "data" member; it runs
// while Publish is serialised, so it must not call back into the Server. Data that is not
// valid JSON is replaced by null (and logged) so that no response is ever corrupted.
func (s *Server) Publish(channels []string, build func(replayID int64) json.RawMessage) int64 {
	return s.PublishMessages(func(replayID int64) []Message {
		return []Message{{Channels: channels, Data: build(replayID)}}
	})
}

// popFIFO forgets the oldest retained event on every channel. Every event with a lower id is
// already forgotten, so every id up to it becomes invalid. Callers hold s.mu.
func (s *Server) popFIFO() {
	ev := s.fifo[s.fifoStart]
	s.fifo[s.fifoStart] = nil
	s.fifoStart++
	for _, st := range ev.chans {
		if st.start < len(st.log) && st.log[st.start].ev == ev {
			st.dropHead()
		}
	}
	ev.chans = nil
	if ev.id > s.globalHorizon {
		s.globalHorizon = ev.id
	}
	if s.fifoStart >= 64 && s.fifoStart*2 >= len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.fifoStart:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.fifoStart = 0
	}
}

// cleanFIFO pops events no channel retains any more. Callers hold s.mu.
func (s *Server) cleanFIFO() {
	for s.fifoStart < len(s.fifo) && s.fifo[s.fifoStart].refs == 0 {
		s.popFIFO()
	}
}

// ExpireEvents forgets every retained event: every replay id issued so far becomes invalid.
// Events already queued for connected subscribers are still delivered.
func (s *Server) ExpireEvents() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fifoStart < len(s.fifo) {
		s.popFIFO()
	}
	s.globalHorizon = s.lastID
}

// ExpireBefore forgets the events published before t (by the Now clock); their replay ids
// become invalid.
func (s *Server) ExpireBefore(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.fifoStart < len(s.fifo) && s.fifo[s.fifoStart].published.Before(t) {
		s.popFIFO()
	}
	for _, st := range s.channels {
		st.pruneBefore(t)
	}
	s.cleanFIFO()
}
