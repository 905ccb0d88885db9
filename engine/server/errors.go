package server

import (
	"github.com/valyala/fasthttp"
)

// Error codes in error bodies. They are stable: clients may switch on them.
const (
	CodeInvalidArgument  = "invalid_argument"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeNotReady         = "not_ready"
	CodeInternal         = "internal"
)

// writeError answers with status and the body {"error":{"code":...,"message":...}}.
func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(status)
	b := append(make([]byte, 0, 64+len(msg)), `{"error":{"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	b = append(b, "}}\n"...)
	ctx.Response.SetBody(b)
}
