package route

import (
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// Match is the result of a location lookup.
type Match struct {
	// Location is the matched location; nil means the server's own
	// settings apply (no location matched).
	Location *config.Location
	// Redirect is set when nginx's auto-redirect applies: the URI lacks
	// the trailing slash of a proxied prefix location and the answer is a
	// 301 to URI + "/".
	Redirect bool
	// Captures holds the regex submatches of a regex location ($1...).
	Captures []string
}

// Settings returns the settings in force for the match.
func (m Match) Settings(srv *config.Server) *config.Settings {
	if m.Location != nil {
		return m.Location.Settings
	}
	return srv.Settings
}

// Find returns the location for the normalized URI uri, following
// nginx's ngx_http_core_find_location: "=" exact matches win at once; then
// the longest matching prefix (recursing into its nested locations);
// "^~" on it stops the regex search; otherwise regex locations are tried
// in configuration order (those nested in the prefix first) and the first
// match wins; failing that, the longest prefix.
func Find(srv *config.Server, uri string) Match {
	var m Match
	rc := find(srv.Locations, uri, &m)
	if rc == rcDone {
		m.Redirect = true
	}
	return m
}

type rc int

const (
	rcDeclined rc = iota // nothing matched at this level
	rcAgain              // a prefix matched (Match.Location set); regexes may still win
	rcOK                 // final (exact match, ^~, or regex)
	rcDone               // auto-redirect
)

func find(locs []*config.Location, uri string, m *Match) rc {
	res, noregex := findStatic(locs, uri, m)
	if res == rcAgain && len(m.Location.Children) > 0 {
		prefix := m.Location
		sub := find(prefix.Children, uri, m)
		if sub == rcOK || sub == rcDone {
			return sub
		}
		if sub == rcDeclined {
			m.Location = prefix
		}
		// nested prefix matched (rcAgain) keeps the nested location
	}
	if res == rcOK || res == rcDone {
		return res
	}
	if !noregex {
		for _, l := range locs {
			if l.Regex == nil {
				continue
			}
			if sm := l.Regex.FindStringSubmatch(uri); sm != nil {
				m.Location = l
				m.Captures = sm
				if len(l.Children) > 0 {
					find(l.Children, uri, m)
				}
				return rcOK
			}
		}
	}
	return res
}

// findStatic finds the exact or longest prefix location among locs.
func findStatic(locs []*config.Location, uri string, m *Match) (rc, bool) {
	var best, redirectTo *config.Location
	for _, l := range locs {
		switch l.Modifier {
		case "=":
			if uri == l.Path {
				m.Location = l
				return rcOK, true
			}
			// nginx's location tree gives "= /x/" with proxy_pass the
			// auto-redirect too (node->auto_redirect covers exact nodes).
			if l.AutoRedirect && uri+"/" == l.Path {
				redirectTo = l
			}
		case "", "^~":
			if strings.HasPrefix(uri, l.Path) {
				if best == nil || len(l.Path) > len(best.Path) {
					best = l
				}
			} else if l.AutoRedirect && uri+"/" == l.Path {
				redirectTo = l
			}
		}
	}
	if redirectTo != nil && !hasExactPrefix(locs, uri) {
		// Match.Location names the location that redirects.
		m.Location = redirectTo
		return rcDone, true
	}
	if best == nil {
		return rcDeclined, false
	}
	m.Location = best
	return rcAgain, best.Modifier == "^~"
}

// hasExactPrefix reports whether a prefix location's path equals uri (it
// then matches and the auto-redirect does not apply).
func hasExactPrefix(locs []*config.Location, uri string) bool {
	for _, l := range locs {
		if (l.Modifier == "" || l.Modifier == "^~") && l.Path == uri {
			return true
		}
	}
	return false
}
