package proxy

import (
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// filePath maps uri to a filesystem path with root or alias. A request's
// uri is normalized (no "..", no "//"), so the result cannot leave root;
// a URI made by rewrite is not, and is cleaned first (nginx would let
// "/../" segments of a rewritten URI climb out of the root).
func (h *Handler) filePath(q *request, uri string) string {
	s := q.set
	if q.internal && strings.Contains(uri, "..") {
		clean := path.Clean("/" + uri)
		if strings.HasSuffix(uri, "/") && clean != "/" {
			clean += "/"
		}
		uri = clean
	}
	root := s.Root.Eval(q)
	if s.RootIsAlias && q.loc != nil {
		if q.loc.Regex != nil {
			// a regex location's alias is the whole path (with captures)
			return root
		}
		rest := strings.TrimPrefix(uri, q.loc.Path)
		if !strings.HasSuffix(root, "/") && rest != "" && !strings.HasPrefix(rest, "/") {
			return root + "/" + rest
		}
		return root + rest
	}
	return strings.TrimSuffix(root, "/") + uri
}

// tryFiles implements try_files: the first existing file (or directory,
// for a candidate ending in "/") is served in this location; otherwise
// the last argument is an internal redirect, a named location or =CODE.
func (h *Handler) tryFiles(w *responseWriter, q *request, depth int) {
	if h.aliasRewritten(w, q, depth) {
		return
	}
	tf := q.set.TryFiles
	for _, t := range tf[:len(tf)-1] {
		cand := t.Eval(q)
		// As nginx: a candidate written with a trailing slash tests for a
		// directory, and the slash is dropped from the tested name (so
		// "$uri/" for "/dir" serves "/dir", which then redirects to "/dir/").
		dir := strings.HasSuffix(t.Raw(), "/")
		if dir {
			cand = cand[:len(cand)-1]
		}
		if cand == "" {
			continue
		}
		p := h.filePath(q, cand)
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if dir != st.IsDir() {
			continue
		}
		q.uri = cand
		h.serveStatic(w, q, depth)
		return
	}
	last := tf[len(tf)-1].Eval(q)
	if strings.HasPrefix(last, "=") {
		code, _ := strconv.Atoi(last[1:])
		h.errorPage(w, q, code, depth)
		return
	}
	h.internalRedirect(w, q, last, depth, false)
}

// serveStatic serves q.uri from the filesystem: files with their MIME
// type, directories through index (an internal redirect) or a 301 to the
// slashed URI, 404/403 otherwise.
func (h *Handler) serveStatic(w *responseWriter, q *request, depth int) {
	if h.aliasRewritten(w, q, depth) {
		return
	}
	r := q.r
	p := h.filePath(q, q.uri)
	if strings.HasSuffix(q.uri, "/") {
		for _, ix := range q.set.Index {
			name := ix.Eval(q)
			if strings.HasPrefix(name, "/") {
				h.internalRedirect(w, q, name, depth, true) // index keeps them
				return
			}
			if st, err := os.Stat(path.Join(p, name)); err == nil && !st.IsDir() {
				h.internalRedirect(w, q, q.uri+name, depth, true)
				return
			}
		}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			h.elog.Printf("[error] directory index of %q is forbidden, client: %s", p, q.remoteIP)
			h.errorPage(w, q, http.StatusForbidden, depth)
			return
		}
		h.notFound(w, q, p, depth)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		if os.IsPermission(err) {
			h.errorPage(w, q, http.StatusForbidden, depth)
			return
		}
		h.notFound(w, q, p, depth)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		h.notFound(w, q, p, depth)
		return
	}
	if st.IsDir() {
		loc := q.uri + "/"
		if q.hasArgs {
			loc += "?" + q.args
		}
		h.redirect(w, q, http.StatusMovedPermanently, h.absolute(q, loc))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.errorPage(w, q, http.StatusMethodNotAllowed, depth)
		return
	}
	w.Header().Set("Content-Type", contentType(q.set, p))
	code := http.StatusOK
	if w.override > 0 {
		code = w.override
	}
	h.addHeaders(w, q, code)
	if w.override > 0 {
		// an error_page target: plain body with the error's status
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				w.Write(buf[:n])
				if err != nil {
					break
				}
			}
		}
		return
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// aliasRewritten answers 500 for a file of an alias location whose URI
// "rewrite ... break" (or break after a rewrite) changed, as nginx does
// (ngx_http_map_uri_to_path); it reports whether it answered.
func (h *Handler) aliasRewritten(w *responseWriter, q *request, depth int) bool {
	if !q.locInvalid || !q.set.RootIsAlias || q.loc == nil {
		return false
	}
	h.elog.Printf("[alert] \"alias\" cannot be used in location %q where URI was rewritten, client: %s, request: %q", q.loc.Path, q.remoteIP, q.r.Method+" "+q.r.RequestURI)
	h.errorPage(w, q, http.StatusInternalServerError, depth)
	return true
}

func (h *Handler) notFound(w *responseWriter, q *request, p string, depth int) {
	h.elog.Printf("[error] open() %q failed (2: No such file or directory), client: %s, request: %q", p, q.remoteIP, q.r.Method+" "+q.r.RequestURI)
	h.errorPage(w, q, http.StatusNotFound, depth)
}

// contentType picks the MIME type for a file name from the types map,
// falling back to default_type.
func contentType(s *config.Settings, name string) string {
	if ext := path.Ext(name); ext != "" {
		if t, ok := s.Types[strings.ToLower(ext[1:])]; ok {
			return t
		}
	}
	return s.DefaultType
}
