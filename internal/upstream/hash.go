package upstream

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ipHash is nginx's ip_hash (ngx_http_upstream_get_ip_hash_peer): the
// first three octets of an IPv4 client address, or the whole IPv6
// address, are folded as hash = (hash*113 + octet) % 6271 starting from
// 89; hash % total weight picks a server by weight range. An unusable
// server makes it fold the same octets again into the running hash, up to
// maxHashTries times, then it falls back to round robin. So all clients
// of one /24 land on one server. The caller holds p.mu.
func (p *Pool) ipHash(r *Request, now time.Time) *Server {
	if len(p.primary) < 2 || p.totalWeight == 0 {
		return p.roundRobin(r, now)
	}
	var buf [16]byte
	addr := ipHashOctets(r.ClientIP, &buf)
	hash := uint32(89)
	for range maxHashTries + 1 {
		for _, b := range addr {
			hash = (hash*113 + uint32(b)) % 6271
		}
		s := p.primary[weightedIndex(p.primary, int(hash%uint32(p.totalWeight)))]
		if p.usable(s, r, now) {
			return s
		}
	}
	return p.roundRobin(r, now)
}

// ipHashOctets returns the octets ip_hash folds: three for IPv4, sixteen
// for IPv6, and nginx's pseudo address of three zero octets for anything
// that is not an IP address.
func ipHashOctets(ip string, buf *[16]byte) []byte {
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return buf[:3] // zeros
	case a.Is4():
		b := a.As4()
		copy(buf[:], b[:3])
		return buf[:3]
	default:
		*buf = a.As16()
		return buf[:16]
	}
}

// hash is nginx's non-consistent "hash KEY" (ngx_http_upstream_get_hash_peer),
// compatible with Cache::Memcached: hash += (crc32([REHASH] KEY) >> 16) &
// 0x7fff, with the try number as REHASH prefix after the first try, and
// hash % total weight picks a server by weight range. Adding a server
// remaps most keys; use "consistent" when that matters. An empty key
// falls back to round robin. The caller holds p.mu.
func (p *Pool) hash(r *Request, now time.Time) *Server {
	if len(p.primary) < 2 || p.totalWeight == 0 || r.HashKey == "" {
		return p.roundRobin(r, now)
	}
	var hash uint32
	var num [20]byte
	for rehash := range maxHashTries + 1 {
		var c uint32
		if rehash > 0 {
			c = crc32.ChecksumIEEE(strconv.AppendInt(num[:0], int64(rehash), 10))
		}
		c = crc32Update(c, r.HashKey)
		hash += (c >> 16) & 0x7fff
		s := p.primary[weightedIndex(p.primary, int(hash%uint32(p.totalWeight)))]
		if p.usable(s, r, now) {
			return s
		}
	}
	return p.roundRobin(r, now)
}

// crc32Update continues an IEEE CRC-32 over the bytes of s without
// converting s to a slice.
func crc32Update(c uint32, s string) uint32 {
	var buf [64]byte
	for len(s) > 0 {
		n := copy(buf[:], s)
		c = crc32.Update(c, crc32.IEEETable, buf[:n])
		s = s[n:]
	}
	return c
}

// chashPoint is one point of the consistent hash ring.
type chashPoint struct {
	hash uint32
	addr string // server address; several server lines may share one
}

// pointsPerWeight is the number of ring points per weight unit, as in
// nginx (and Cache::Memcached::Fast).
const pointsPerWeight = 160

// buildPoints builds the ketama ring of ngx_http_upstream_init_chash:
// for each server, base = crc32(HOST "\0" PORT), then weight*160 points,
// each crc32 of base continued with the previous point's 4 little-endian
// bytes. Points are sorted and duplicates dropped. Adding one server to N
// moves about 1/(N+1) of the keys.
func buildPoints(servers []*Server) []chashPoint {
	n := 0
	for _, s := range servers {
		n += s.cfg.Weight * pointsPerWeight
	}
	points := make([]chashPoint, 0, n)
	for _, s := range servers {
		host, port := s.cfg.Addr, ""
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port = host[:i], host[i+1:]
		}
		// nginx finalizes the host CRC, then keeps updating from that
		// value as if it were a running state; with Go's crc32 (which
		// inverts in and out) that is Update(^h, ...) inverted back.
		h := crc32.ChecksumIEEE([]byte(host))
		base := crc32.Update(^h, crc32.IEEETable, append([]byte{0}, port...))
		var prev [4]byte
		for range s.cfg.Weight * pointsPerWeight {
			v := crc32.Update(base, crc32.IEEETable, prev[:])
			points = append(points, chashPoint{hash: v, addr: s.cfg.Addr})
			binary.LittleEndian.PutUint32(prev[:], v)
		}
	}
	slices.SortStableFunc(points, func(a, b chashPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(points, func(a, b chashPoint) bool { return a.hash == b.hash })
}

// consistentHash is nginx's "hash KEY consistent"
// (ngx_http_upstream_get_chash_peer): crc32(KEY) finds the first ring
// point at or after it; the server of that point is used if usable,
// otherwise the next point's, up to maxHashTries points, then round
// robin. An empty key falls back to round robin. The caller holds p.mu.
func (p *Pool) consistentHash(r *Request, now time.Time) *Server {
	if len(p.points) == 0 || r.HashKey == "" {
		return p.roundRobin(r, now)
	}
	key := crc32Update(0, r.HashKey)
	at, _ := slices.BinarySearchFunc(p.points, key, func(pt chashPoint, k uint32) int {
		switch {
		case pt.hash < k:
			return -1
		case pt.hash > k:
			return 1
		}
		return 0
	})
	for try := range maxHashTries + 1 {
		addr := p.points[(at+try)%len(p.points)].addr
		// Several server lines with one address share its points; nginx
		// picks among them by smooth weighted round robin.
		if best := p.smoothWeighted(p.primary, addr, r, now); best != nil {
			return best
		}
	}
	return p.roundRobin(r, now)
}
