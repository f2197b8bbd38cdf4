package upstream

import "time"

// roundRobin is nginx's default method over the primary servers, then the
// backup servers when no primary can take r. The caller holds p.mu.
func (p *Pool) roundRobin(r *Request, now time.Time) *Server {
	if s := p.smoothWeighted(p.primary, "", r, now); s != nil {
		return s
	}
	return p.smoothWeighted(p.backup, "", r, now)
}

// smoothWeighted is nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer): every usable server adds its effective
// weight to its current weight, the server with the largest current
// weight wins and gives back the total. Weights 5:3:2 give exactly 5, 3
// and 2 picks in every 10, interleaved. A server's effective weight,
// lowered by failures, grows back by one weight unit each round; slow
// start caps it further. A non-empty addr limits it to the server lines
// with that address (hash consistent). The caller holds p.mu.
func (p *Pool) smoothWeighted(group []*Server, addr string, r *Request, now time.Time) *Server {
	var best *Server
	var total int64
	for _, s := range group {
		if addr != "" && s.cfg.Addr != addr || !p.usable(s, r, now) {
			continue
		}
		w := s.pickWeight(now)
		s.current += w
		total += w
		if s.effective < s.weight {
			s.effective = min(s.effective+weightScale, s.weight)
		}
		if best == nil || s.current > best.current {
			best = s
		}
	}
	if best != nil {
		best.current -= total
	}
	return best
}
