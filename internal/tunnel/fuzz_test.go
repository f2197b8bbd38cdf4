package tunnel

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzClientStream feeds arbitrary bytes from a client through the
// frame-aware engine. Whatever reaches the backend must be a prefix of the
// input, optionally followed by the proxy's own masked Close frame, and the
// tunnel must end once the client is gone.
func FuzzClientStream(f *testing.F) {
	good, _ := frameSequence(true)
	f.Add(good[:2000])
	f.Add(wsFrame(0x81, []byte("unmasked"), false))
	f.Add(append(wsFrame(0x01, []byte("a"), true), wsFrame(0x82, []byte("b"), true)...))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x88, 0x81, 1, 2, 3, 4, 5})
	f.Add(append(wsFrame(0x89, nil, true), 0x81, 0xfe))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t, Options{Frames: true, MaxMessageSize: 4096}, nil, nil)
		got := make(chan []byte, 1)
		go func() {
			r.backend.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(r.backend)
			got <- b
		}()
		r.client.Write(data)
		r.client.(*net.TCPConn).CloseWrite()
		r.wait(3 * time.Second)
		out := <-got
		if bytes.HasPrefix(data, out) {
			return
		}
		n := len(out) - 8 // a proxy Close: 2 header + 4 key + 2 code
		if n < 0 || !bytes.HasPrefix(data, out[:n]) {
			t.Fatalf("backend got bytes that are not a prefix of the input")
		}
		fr, err := readFrame(bytes.NewReader(out[n:]))
		if err != nil || fr.opcode() != opClose || !fr.masked {
			t.Fatalf("backend got a non-prefix tail %x", out[n:])
		}
	})
}
