package upstream

import "time"

// leastConn is nginx's least_conn (ngx_http_upstream_get_least_conn_peer)
// over one group: the usable server with the fewest live requests and
// tunnels per unit of weight wins; servers tied on that are chosen among
// by smooth weighted round robin. Live counts include WebSocket tunnels
// for as long as they are open, so long-lived connections spread evenly.
// The caller holds p.mu.
func (p *Pool) leastConn(group []*Server, r *Request, now time.Time) *Server {
	var best *Server
	var bestLoad float64
	first, many := 0, false
	for i, s := range group {
		if !p.usable(s, r, now) {
			continue
		}
		l := s.load(now)
		switch {
		case best == nil || l < bestLoad:
			best, bestLoad, first, many = s, l, i, false
		case l == bestLoad:
			many = true
		}
	}
	if best == nil || !many {
		return best
	}
	var total int64
	for _, s := range group[first:] {
		if !p.usable(s, r, now) || s.load(now) != bestLoad {
			continue
		}
		w := s.pickWeight(now)
		s.current += w
		total += w
		if s.effective < s.weight {
			s.effective = min(s.effective+weightScale, s.weight)
		}
		if s.current > best.current {
			best = s
		}
	}
	best.current -= total
	return best
}
