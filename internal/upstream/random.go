package upstream

import (
	"math/rand/v2"
	"time"
)

// maxHashTries is how many times ip_hash, hash and random look for a
// usable server before falling back to round robin, as nginx does.
const maxHashTries = 20

// random is nginx's "random [two [least_conn]]": a server drawn at random
// with probability proportional to its weight; with "two", two distinct
// servers are drawn and the one with fewer live connections per weight
// wins. After maxHashTries draws that hit unusable servers it falls back
// to round robin. The caller holds p.mu.
func (p *Pool) random(r *Request, now time.Time) *Server {
	if len(p.primary) == 0 || p.totalWeight == 0 {
		return nil
	}
	var first *Server
	for range maxHashTries {
		s := p.primary[weightedIndex(p.primary, rand.IntN(p.totalWeight))]
		if !p.usable(s, r, now) {
			continue
		}
		if !p.cfg.RandomTwo {
			return s
		}
		if first == nil {
			first = s
			continue
		}
		if s == first {
			continue
		}
		// nginx: if (peer->conns * prev->weight > prev->conns * peer->weight) peer = prev
		if s.load(now) > first.load(now) {
			return first
		}
		return s
	}
	return p.roundRobin(r, now)
}

// weightedIndex returns the index of the server whose weight range holds
// w, walking servers in order as nginx does for ip_hash and hash: each
// server owns cfg.Weight consecutive values of [0, totalWeight).
func weightedIndex(group []*Server, w int) int {
	for i, s := range group {
		if w < s.cfg.Weight {
			return i
		}
		w -= s.cfg.Weight
	}
	return len(group) - 1
}
