package h2

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The header block reader. x/net's Framer can decode header blocks itself
// (ReadMetaHeaders), but it allocates a frame, a closure with its state and
// a growing field slice for every block. This reader keeps that state in
// the conn and reuses one MetaHeadersFrame and its field slice, with the
// same checks and limits as the Framer's (x/net v0.59.0, Framer.readMetaFrame): the
// header list size (fields past it are dropped and the block marked
// Truncated, the rest still decoded so the HPACK table stays in step), a
// fragment over twice what is left of that size or a CONTINUATION after an
// invalid field ends the connection (the CONTINUATION flood bound,
// CVE-2024-27316), field names lower-case tokens, values valid,
// pseudo-headers before regular fields, known and not repeated. The
// Framer still checks the frame order: only CONTINUATIONs on the same
// stream may follow a HEADERS without END_HEADERS.

// maxKeptFields is the field slice kept for the next block: a block with
// more fields allocates its own, so an idle connection keeps little.
const maxKeptFields = 32

var (
	errPseudoAfterRegular = errors.New("pseudo-header after a regular header field")
	errFieldName          = errors.New("invalid header field name")
	errFieldValue         = errors.New("invalid header field value")
	errPseudo             = errors.New("unknown or repeated pseudo-header, or request and response ones mixed")
)

// headerBlock is the conn's decoding state for one header block.
type headerBlock struct {
	dec         *hpack.Decoder
	meta        http2.MetaHeadersFrame
	kept        []hpack.HeaderField // reused storage for meta.Fields
	maxSize     uint32              // the header list size limit
	remain      uint32              // what is left of it for this block
	sawRegular  bool
	invalid     error
	emitEnabled bool
}

func (b *headerBlock) init(maxSize uint32) {
	b.maxSize = maxSize
	b.dec = hpack.NewDecoder(4096, b.emit)
	b.dec.SetMaxStringLength(int(min(maxSize, 1<<30)))
}

// emit takes one decoded field.
func (b *headerBlock) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		b.invalid = errFieldValue // the value is not named: it may be secret
	}
	if strings.HasPrefix(hf.Name, ":") {
		if b.sawRegular {
			b.invalid = errPseudoAfterRegular
		}
	} else {
		b.sawRegular = true
		if !validWireName(hf.Name) {
			b.invalid = errFieldName
		}
	}
	if b.invalid != nil {
		b.dec.SetEmitEnabled(false)
		return
	}
	if size := hf.Size(); size > b.remain {
		b.dec.SetEmitEnabled(false)
		b.meta.Truncated = true
		b.remain = 0
		return
	} else {
		b.remain -= size
	}
	b.meta.Fields = append(b.meta.Fields, hf)
}

// validWireName: a token with no upper-case letter (RFC 9113 8.2.1).
func validWireName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' || !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// readFrame reads the next frame, a HEADERS with its CONTINUATIONs decoded
// into one MetaHeadersFrame, valid until the next call (its fields are
// cleared by release).
func (c *conn) readFrame() (http2.Frame, error) {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	hf, ok := f.(*http2.HeadersFrame)
	if !ok {
		return f, nil
	}
	b := &c.hb
	b.meta = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: b.kept[:0]}
	b.remain = b.maxSize
	b.sawRegular = false
	b.invalid = nil
	b.dec.SetEmitEnabled(true)
	frag, ended := hf.HeaderBlockFragment(), hf.HeadersEnded()
	for {
		// Too much to be worth decoding: a fragment over twice what is
		// left of the list size (any CONTINUATION once it is used up),
		// or a CONTINUATION after an invalid field (its size no longer
		// counted).
		if uint64(len(frag)) > 2*uint64(b.remain) || b.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := b.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if ended {
			break
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf, ok := f.(*http2.ContinuationFrame) // the Framer checks the order
		if !ok {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		frag, ended = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if cap(b.meta.Fields) <= maxKeptFields {
		b.kept = b.meta.Fields[:0]
	}
	if err := b.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if b.invalid == nil && !validPseudos(b.meta.PseudoFields()) {
		b.invalid = errPseudo
	}
	if b.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: b.invalid}
	}
	return &b.meta, nil
}

// release drops the strings of the last block's fields, so that an idle
// connection does not keep them.
func (b *headerBlock) release() {
	clear(b.meta.Fields)
	b.meta = http2.MetaHeadersFrame{}
}

// validPseudos: known pseudo-headers, none repeated, not request and
// response ones together.
func validPseudos(pf []hpack.HeaderField) bool {
	var request, response bool
	for i, hf := range pf {
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return false
		}
		for _, prev := range pf[:i] {
			if prev.Name == hf.Name {
				return false
			}
		}
	}
	return !(request && response)
}
