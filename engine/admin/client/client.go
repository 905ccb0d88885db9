// Package client is a Go client of the engine's admin API (engine/admin): push, list and
// delete plugin versions; activate, roll back, shadow, split and compare stages.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/podium-rank/podium/engine"
	"github.com/podium-rank/podium/engine/admin"
	"github.com/podium-rank/podium/engine/registry"
)

// Client talks to one admin API. Its fields must not change while it is in use; it is
// then goroutine-safe.
type Client struct {
	// URL is the admin API's base URL, e.g. "http://127.0.0.1:8081".
	URL string
	// Token is the bearer token.
	Token string
	// Caller names who makes changes (sent as X-Podium-Caller); empty sends none.
	Caller string
	// HTTP is the HTTP client; nil means http.DefaultClient.
	HTTP *http.Client
}

// Error is an error answer of the admin API.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// do sends a request and decodes a 2xx JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, r)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Caller != "" {
		req.Header.Set(admin.CallerHeader, c.Caller)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin API at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("cannot read the admin API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb admin.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(data))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cannot decode the admin API's answer: %w", err)
	}
	return nil
}

// Push uploads a .wasm; the API validates it (a refused module is an *Error with code
// invalid_plugin saying why).
func (c *Client) Push(ctx context.Context, wasm []byte) (admin.PushResult, error) {
	var out admin.PushResult
	err := c.do(ctx, "POST", "/admin/plugins", wasm, "application/wasm", &out)
	return out, err
}

// Plugins lists the stored plugin versions, newest first.
func (c *Client) Plugins(ctx context.Context) ([]engine.PluginStatus, error) {
	var out struct {
		Plugins []engine.PluginStatus `json:"plugins"`
	}
	err := c.do(ctx, "GET", "/admin/plugins", nil, "", &out)
	return out.Plugins, err
}

// Plugin returns one stored version (ref: a version or a unique prefix).
func (c *Client) Plugin(ctx context.Context, ref string) (engine.PluginStatus, error) {
	var out engine.PluginStatus
	err := c.do(ctx, "GET", "/admin/plugins/"+url.PathEscape(ref), nil, "", &out)
	return out, err
}

// DeletePlugin deletes a stored version that no stage uses.
func (c *Client) DeletePlugin(ctx context.Context, ref string) (registry.Plugin, error) {
	var out struct {
		Deleted registry.Plugin `json:"deleted"`
	}
	err := c.do(ctx, "DELETE", "/admin/plugins/"+url.PathEscape(ref), nil, "", &out)
	return out.Deleted, err
}

// Stages returns the live pipeline.
func (c *Client) Stages(ctx context.Context) ([]engine.StageStatus, error) {
	var out struct {
		Stages []engine.StageStatus `json:"stages"`
	}
	err := c.do(ctx, "GET", "/admin/stages", nil, "", &out)
	return out.Stages, err
}

// Stage returns one live stage.
func (c *Client) Stage(ctx context.Context, name string) (engine.StageStatus, error) {
	var out engine.StageStatus
	err := c.do(ctx, "GET", "/admin/stages/"+url.PathEscape(name), nil, "", &out)
	return out, err
}

// SetStage applies an update to a stage (see engine.StageUpdate).
func (c *Client) SetStage(ctx context.Context, name string, u engine.StageUpdate) (engine.StageStatus, error) {
	body, err := json.Marshal(u)
	if err != nil {
		return engine.StageStatus{}, err
	}
	var out engine.StageStatus
	err = c.do(ctx, "PUT", "/admin/stages/"+url.PathEscape(name), body, "application/json", &out)
	return out, err
}

// Activate makes version (with params, may be nil) the stage's champion.
func (c *Client) Activate(ctx context.Context, stage, version string, params json.RawMessage) (engine.StageStatus, error) {
	return c.SetStage(ctx, stage, engine.StageUpdate{Champion: &registry.Variant{Version: version, Params: params}})
}

// Rollback returns the stage to its previous champion.
func (c *Client) Rollback(ctx context.Context, stage string) (engine.StageStatus, error) {
	var out engine.StageStatus
	err := c.do(ctx, "POST", "/admin/stages/"+url.PathEscape(stage)+"/rollback", nil, "", &out)
	return out, err
}

// AddChallenger adds ch to the stage's challengers, replacing one of the same name. It
// reads the stage and writes it back naming the revision it read, so a concurrent change
// makes it fail with code conflict instead of being overwritten.
func (c *Client) AddChallenger(ctx context.Context, stage string, ch registry.Challenger) (engine.StageStatus, error) {
	st, err := c.Stage(ctx, stage)
	if err != nil {
		return st, err
	}
	cs := []registry.Challenger{}
	for _, o := range st.Challengers {
		if o.Name != ch.Name {
			cs = append(cs, o)
		}
	}
	cs = append(cs, ch)
	return c.SetStage(ctx, stage, engine.StageUpdate{Challengers: &cs, Revision: st.Revision})
}

// RemoveChallenger removes the named challenger from the stage.
func (c *Client) RemoveChallenger(ctx context.Context, stage, name string) (engine.StageStatus, error) {
	st, err := c.Stage(ctx, stage)
	if err != nil {
		return st, err
	}
	cs := []registry.Challenger{}
	found := false
	for _, o := range st.Challengers {
		if o.Name == name {
			found = true
			continue
		}
		cs = append(cs, o)
	}
	if !found {
		return st, &Error{Status: 404, Code: admin.CodeNotFound, Message: fmt.Sprintf("stage %q has no challenger %q", stage, name)}
	}
	return c.SetStage(ctx, stage, engine.StageUpdate{Challengers: &cs, Revision: st.Revision})
}

// Compare returns the stage's champion/challenger statistics.
func (c *Client) Compare(ctx context.Context, stage string) (engine.CompareStatus, error) {
	var out engine.CompareStatus
	err := c.do(ctx, "GET", "/admin/compare/"+url.PathEscape(stage), nil, "", &out)
	return out, err
}

// Events returns the newest n events of the operations log (all if n is 0).
func (c *Client) Events(ctx context.Context, n int) ([]registry.Event, error) {
	var out struct {
		Events []registry.Event `json:"events"`
	}
	err := c.do(ctx, "GET", fmt.Sprintf("/admin/events?n=%d", n), nil, "", &out)
	return out.Events, err
}
