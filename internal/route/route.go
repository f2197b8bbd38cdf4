// Package route picks the server block for a request (listen address and
// server_name, as nginx does) and the location inside it.
package route

import (
	"net"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// Binding is one socket wsgate listens on and the servers reachable
// through it.
type Binding struct {
	// Addr is the address to bind ("host:port" or ":port").
	Addr string
	// TLS is set when any listen on this socket has "ssl".
	TLS bool
	// groups maps a local IP ("" = wildcard) to the servers listening there.
	groups map[string]*group
}

type group struct {
	servers []*config.Server
	def     *config.Server
}

// Table maps sockets to server blocks. It is immutable once built.
type Table struct {
	Bindings []*Binding
	byAddr   map[string]*Binding
}

// Build groups the configuration's servers by the sockets they listen on.
// When a port has a wildcard listen, wsgate binds only the wildcard and
// picks servers by the connection's local address, as nginx does.
func Build(h *config.HTTP) *Table {
	t := &Table{byAddr: map[string]*Binding{}}
	if h == nil {
		return t
	}
	type key struct{ ip, port string }
	wildPorts := map[string]bool{}
	for _, s := range h.Servers {
		for _, l := range s.Listens {
			ip, port, _ := net.SplitHostPort(l.Addr)
			if ip == "" || ip == "0.0.0.0" || ip == "::" {
				wildPorts[port] = true
			}
		}
	}
	for _, s := range h.Servers {
		for _, l := range s.Listens {
			ip, port, _ := net.SplitHostPort(l.Addr)
			if ip == "0.0.0.0" || ip == "::" {
				ip = ""
			}
			bindAddr := l.Addr
			if wildPorts[port] {
				bindAddr = ":" + port
			}
			b := t.byAddr[bindAddr]
			if b == nil {
				b = &Binding{Addr: bindAddr, groups: map[string]*group{}}
				t.byAddr[bindAddr] = b
				t.Bindings = append(t.Bindings, b)
			}
			if l.SSL {
				b.TLS = true
			}
			g := b.groups[ip]
			if g == nil {
				g = &group{}
				b.groups[ip] = g
			}
			if !contains(g.servers, s) {
				g.servers = append(g.servers, s)
			}
			if l.DefaultServer && g.def == nil {
				g.def = s
			}
		}
	}
	for _, b := range t.Bindings {
		for _, g := range b.groups {
			if g.def == nil {
				g.def = g.servers[0]
			}
		}
	}
	sort.SliceStable(t.Bindings, func(i, j int) bool { return t.Bindings[i].Addr < t.Bindings[j].Addr })
	return t
}

func contains(ss []*config.Server, s *config.Server) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Binding returns the binding for a bind address.
func (t *Table) Binding(addr string) *Binding { return t.byAddr[addr] }

// Server returns the server block for a connection that arrived on b at
// local IP localIP, for the request's host (the Host header; may carry a
// port). It never returns nil for a binding built from a config.
func (b *Binding) Server(localIP, host string) *config.Server {
	g := b.group(localIP)
	if g == nil {
		return nil
	}
	name := NormalizeHost(host)
	if s, _ := matchName(g.servers, name); s != nil {
		return s
	}
	return g.def
}

// Default returns the default server for a connection that arrived on b at
// local IP localIP: the one nginx takes connection-level settings from
// (client_header_timeout, ...) and answers with when no server_name
// matches.
func (b *Binding) Default(localIP string) *config.Server {
	if g := b.group(localIP); g != nil {
		return g.def
	}
	return nil
}

// group returns the servers listening on b at localIP: that address's own
// listens, else the wildcard's, else (an address b was not built for) the
// group whose default server comes first in the configuration.
func (b *Binding) group(localIP string) *group {
	if g := b.groups[localIP]; g != nil {
		return g
	}
	if g := b.groups[""]; g != nil {
		return g
	}
	var first *group
	for _, g := range b.groups {
		if first == nil || g.def.File < first.def.File || g.def.File == first.def.File && g.def.Line < first.def.Line {
			first = g
		}
	}
	return first
}

// ServerMatch is Server that also returns the submatches of a regex
// server_name ($1... and named captures become variables, as in nginx).
func (b *Binding) ServerMatch(localIP, host string) (*config.Server, *Captures) {
	s := b.Server(localIP, host)
	if s == nil {
		return nil, nil
	}
	name := NormalizeHost(host)
	for _, n := range s.Names {
		if n.Regex != nil {
			if sm := n.Regex.FindStringSubmatch(name); sm != nil {
				if ms, _ := matchName([]*config.Server{s}, name); ms == s {
					return s, NewCaptures(n.Regex.SubexpNames(), sm)
				}
			}
		}
	}
	return s, nil
}

// Captures are the submatches of a regex server_name or location.
type Captures struct {
	Numbered []string          // $0, $1, ...
	Named    map[string]string // (?<name>...) groups
}

// NewCaptures pairs submatches with their group names.
func NewCaptures(names, sm []string) *Captures {
	c := &Captures{Numbered: sm}
	for i, n := range names {
		if n != "" && i < len(sm) {
			if c.Named == nil {
				c.Named = map[string]string{}
			}
			c.Named[strings.ToLower(n)] = sm[i]
		}
	}
	return c
}

// NormalizeHost lowercases host and strips the port and a trailing dot.
func NormalizeHost(host string) string {
	h := host
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// matchName applies nginx's server_name precedence: exact name, longest
// leading wildcard, longest trailing wildcard, first matching regex.
func matchName(servers []*config.Server, name string) (*config.Server, bool) {
	for _, s := range servers {
		for _, n := range s.Names {
			if n.Regex == nil && n.Suffix == "" && n.Prefix == "" && n.Exact == name {
				return s, false
			}
		}
	}
	var best *config.Server
	bestLen := 0
	for _, s := range servers {
		for _, n := range s.Names {
			if n.Suffix == "" {
				continue
			}
			if strings.HasSuffix(name, n.Suffix) || n.Dot && name == n.Suffix[1:] {
				if len(n.Suffix) > bestLen {
					best, bestLen = s, len(n.Suffix)
				}
			}
		}
	}
	if best != nil {
		return best, false
	}
	for _, s := range servers {
		for _, n := range s.Names {
			if n.Prefix != "" && strings.HasPrefix(name, n.Prefix) && len(n.Prefix) > bestLen {
				best, bestLen = s, len(n.Prefix)
			}
		}
	}
	if best != nil {
		return best, false
	}
	for _, s := range servers {
		for _, n := range s.Names {
			if n.Regex != nil && n.Regex.MatchString(name) {
				return s, false
			}
		}
	}
	return nil, false
}
