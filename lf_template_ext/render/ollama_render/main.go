// Command ollama_render renders chat requests with an Ollama Go TEMPLATE the way Ollama's server
// does, so that the tests and `lf-template check --engine ollama` can compare the text with
// LLaMA-Factory's training encoding without running Ollama. Standard library only (Go >= 1.19).
// Built on demand by lf_template_ext/render/ollama_go.py (cached per source hash).
//
// Re-created (not copied) from ollama/ollama v0.33.0-rc2 (snapshot fb30760), minimal shapes only:
//
//   - template/template.go: the FuncMap (json, currentDate, yesterdayDate, toTypeScriptType),
//     Parse (New("").Option("missingkey=zero"), {{ .Response }} appended when the template uses
//     neither .Messages nor .Response), Vars/Identifiers, Execute (messages mode: the data map
//     System/Messages/Tools/Response/Think/ThinkLevel/IsThinkSet; legacy mode: one execution per
//     system/prompt/response turn and everything after {{ .Response }} cut from the last one by
//     deleteNode), collate() (system messages joined into .System with "\n\n" and kept in .Messages;
//     consecutive same-role messages other than "tool" merged with "\n\n"), and the template-facing
//     types templateMessage/templateToolCall/templateArgs/templateTool/templateProperties with their
//     String methods and converters.
//   - api/types.go: Message (role lower-cased on decode), ToolCall, ToolCallFunction,
//     ToolCallFunctionArguments and ToolPropertiesMap (insertion-ordered; templates only see ToMap()),
//     Tool, ToolFunction, ToolFunctionParameters, ToolProperty, PropertyType, ThinkValue.
//   - server/routes.go ChatHandler: Modelfile MESSAGEs first, then the request's messages; the
//     Modelfile SYSTEM is prepended only when the request's first message is not a system message;
//     a thinking-capable model gets think=true when the request leaves it unset, a model without the
//     capability refuses think=true.
//   - server/prompt.go renderPrompt: Think = think.Bool(), ThinkLevel = think.String(),
//     IsThinkSet = think != nil. chatPrompt's truncation to num_ctx is NOT re-created (it needs the
//     model's tokenizer); requests here always fit.
//   - server/images.go goTemplateCapabilities / goTemplateHasToolRoundTrip and thinking/template.go
//     InferTags: reported so tests can check which capabilities Ollama derives from a template.
//   - parser/parser.go ParseFile: the Modelfile state machine (commands, PARAMETER names, values
//     ending at a line break once unquote() accepts them, """...""" and "..." without escapes,
//     non-printable runes dropped, # comments), so tests can read back what `ollama create` reads.
//
// Not re-created: filterThinkTags (server/routes.go; strips <think> blocks from earlier assistant
// contents for qwen3-family GGUFs and models named deepseek-r1 only), image tags ([img-N]),
// renderers/parsers, the GGUF Jinja path.
//
// Differences from Ollama's build that matter for text: Go 1.22+ encoding/json writes \b and \f
// as such (1.19: \u0008, \u000c). Range over integers/iterators in templates needs Go >= 1.22.
//
// Input (stdin): {"template", "system"?, "model_messages"?, "now"? (RFC 3339), "cases": [{"id",
// "messages", "tools"?, "think"?}]}. Output (stdout): {"vars", "capabilities", "thinking_tags",
// "tool_round_trip", "results": [{"id", "prompt", "error"}]}.
// Or: {"modelfile": "<text>"} -> {"commands": [{"name", "args"}], "error"?}.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// ---- api/types.go shapes ----------------------------------------------------------------------

type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Thinking   string     `json:"thinking,omitempty"`
	Images     []string   `json:"images,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

func (m *Message) UnmarshalJSON(b []byte) error {
	type alias Message
	var a alias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*m = Message(a)
	m.Role = strings.ToLower(m.Role)
	return nil
}

type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

type ToolCallFunction struct {
	Index     int                       `json:"index"`
	Name      string                    `json:"name"`
	Arguments ToolCallFunctionArguments `json:"arguments"`
}

// orderedKeys decodes a JSON object keeping its key order; decode is called for each value.
func orderedKeys(data []byte, decode func(key string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("expected a JSON object, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := decode(tok.(string), raw); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// ToolCallFunctionArguments: insertion-ordered in Ollama; templates get ToMap().
type ToolCallFunctionArguments struct {
	keys   []string
	values map[string]any
}

func (t *ToolCallFunctionArguments) UnmarshalJSON(data []byte) error {
	t.keys, t.values = nil, map[string]any{}
	return orderedKeys(data, func(k string, raw json.RawMessage) error {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if _, seen := t.values[k]; !seen {
			t.keys = append(t.keys, k)
		}
		t.values[k] = v
		return nil
	})
}

func (t *ToolCallFunctionArguments) ToMap() map[string]any {
	if t == nil || t.values == nil {
		return nil
	}
	out := make(map[string]any, len(t.values))
	for k, v := range t.values {
		out[k] = v
	}
	return out
}

type Tool struct {
	Type     string       `json:"type"`
	Items    any          `json:"items,omitempty"`
	Function ToolFunction `json:"function"`
}

type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*pt = []string{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(data, &a); err != nil {
		return err
	}
	*pt = a
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	if len(pt) == 0 {
		return ""
	}
	if len(pt) == 1 {
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

// ToolPropertiesMap: insertion-ordered in Ollama; templates reach it through ToMap().
type ToolPropertiesMap struct {
	keys   []string
	values map[string]ToolProperty
}

func (t *ToolPropertiesMap) UnmarshalJSON(data []byte) error {
	t.keys, t.values = nil, map[string]ToolProperty{}
	return orderedKeys(data, func(k string, raw json.RawMessage) error {
		var v ToolProperty
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if _, seen := t.values[k]; !seen {
			t.keys = append(t.keys, k)
		}
		t.values[k] = v
		return nil
	})
}

func (t ToolPropertiesMap) MarshalJSON() ([]byte, error) {
	if t.values == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range t.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(t.values[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (t *ToolPropertiesMap) Len() int {
	if t == nil {
		return 0
	}
	return len(t.keys)
}

func (t *ToolPropertiesMap) ToMap() map[string]ToolProperty {
	if t == nil || t.values == nil {
		return nil
	}
	out := make(map[string]ToolProperty, len(t.values))
	for k, v := range t.values {
		out[k] = v
	}
	return out
}

type ToolProperty struct {
	AnyOf       []ToolProperty     `json:"anyOf,omitempty"`
	Type        PropertyType       `json:"type,omitempty"`
	Items       any                `json:"items,omitempty"`
	Description string             `json:"description,omitempty"`
	Enum        []any              `json:"enum,omitempty"`
	Properties  *ToolPropertiesMap `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
}

// ToTypeScriptType as api.ToolProperty.ToTypeScriptType.
func (tp ToolProperty) ToTypeScriptType() string {
	if len(tp.AnyOf) > 0 {
		var types []string
		for _, a := range tp.AnyOf {
			types = append(types, a.ToTypeScriptType())
		}
		return strings.Join(types, " | ")
	}
	if len(tp.Type) == 0 {
		return "any"
	}
	var types []string
	for _, t := range tp.Type {
		types = append(types, tsType(t))
	}
	return strings.Join(types, " | ")
}

func tsType(t string) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "array":
		return "any[]"
	case "object":
		return "Record<string, any>"
	case "null":
		return "null"
	}
	return "any"
}

type ToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties *ToolPropertiesMap `json:"properties"`
}

type ToolFunction struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	Parameters  ToolFunctionParameters `json:"parameters"`
}

// ThinkValue: a bool or one of "high", "medium", "low", "max".
type ThinkValue struct{ Value any }

func (t *ThinkValue) UnmarshalJSON(data []byte) error {
	var b bool
	if err := json.Unmarshal(data, &b); err == nil {
		t.Value = b
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	t.Value = s
	return nil
}

func (t *ThinkValue) Bool() bool {
	if t == nil {
		return false
	}
	switch v := t.Value.(type) {
	case bool:
		return v
	case string:
		return v == "high" || v == "medium" || v == "low" || v == "max"
	}
	return false
}

func (t *ThinkValue) String() string {
	if t == nil {
		return ""
	}
	switch v := t.Value.(type) {
	case string:
		return v
	case bool:
		if v {
			return "medium"
		}
	}
	return ""
}

// ---- template/template.go shapes --------------------------------------------------------------

var now = time.Now

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate": func(args ...string) string {
		return now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return now().AddDate(0, 0, -1).Format("2006-01-02")
	},
	"toTypeScriptType": func(v any) string {
		if p, ok := v.(ToolProperty); ok {
			return p.ToTypeScriptType()
		}
		if p, ok := v.(*ToolProperty); ok && p != nil {
			return p.ToTypeScriptType()
		}
		return "any"
	},
}

type templateTools []templateTool

func (t templateTools) String() string { b, _ := json.Marshal(t); return string(b) }

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateProperties map[string]ToolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

func (t templateTool) String() string { b, _ := json.Marshal(t); return string(b) }

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

func convertTools(tools []Tool) templateTools {
	if tools == nil {
		return nil
	}
	out := make(templateTools, len(tools))
	for i, t := range tools {
		out[i] = templateTool{
			Type:  t.Type,
			Items: t.Items,
			Function: templateToolFunction{
				Name:        t.Function.Name,
				Description: t.Function.Description,
				Parameters: templateToolFunctionParameters{
					Type:       t.Function.Parameters.Type,
					Defs:       t.Function.Parameters.Defs,
					Items:      t.Function.Parameters.Items,
					Required:   t.Function.Parameters.Required,
					Properties: templateProperties(t.Function.Parameters.Properties.ToMap()),
				},
			},
		}
	}
	return out
}

func convertMessages(msgs []*Message) []*templateMessage {
	if msgs == nil {
		return nil
	}
	out := make([]*templateMessage, len(msgs))
	for i, m := range msgs {
		var calls []templateToolCall
		for _, tc := range m.ToolCalls {
			calls = append(calls, templateToolCall{
				ID: tc.ID,
				Function: templateToolCallFunction{
					Index:     tc.Function.Index,
					Name:      tc.Function.Name,
					Arguments: templateArgs(tc.Function.Arguments.ToMap()),
				},
			})
		}
		out[i] = &templateMessage{
			Role: m.Role, Content: m.Content, Thinking: m.Thinking, Images: m.Images,
			ToolCalls: calls, ToolName: m.ToolName, ToolCallID: m.ToolCallID,
		}
	}
	return out
}

// collate as template.collate: system messages are collected into the returned string AND stay in
// the list; consecutive messages of one role (except "tool") are merged with "\n\n".
func collate(msgs []Message) (string, []*Message) {
	var system []string
	var collated []*Message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if n := len(collated); n > 0 && collated[n-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[n-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), collated
}

type Template struct {
	*template.Template
	raw string
}

var responseNode = &parse.ActionNode{
	NodeType: parse.NodeAction,
	Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Cmds: []*parse.CommandNode{{
		NodeType: parse.NodeCommand,
		Args:     []parse.Node{&parse.FieldNode{NodeType: parse.NodeField, Ident: []string{"Response"}}},
	}}},
}

func Parse(s string) (*Template, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(s)
	if err != nil {
		return nil, err
	}
	t := &Template{Template: tmpl, raw: s}
	vars, err := t.Vars()
	if err != nil {
		return nil, err
	}
	if !contains(vars, "messages") && !contains(vars, "response") {
		tmpl.Tree.Root.Nodes = append(tmpl.Tree.Root.Nodes, responseNode)
	}
	return t, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (t *Template) Vars() ([]string, error) {
	var vars []string
	for _, tt := range t.Templates() {
		for _, n := range tt.Root.Nodes {
			v, err := identifiers(n)
			if err != nil {
				return vars, err
			}
			vars = append(vars, v...)
		}
	}
	set := map[string]bool{}
	for _, n := range vars {
		set[strings.ToLower(n)] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func identifiers(n parse.Node) ([]string, error) {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, c := range n.Nodes {
			i, err := identifiers(c)
			if err != nil {
				return names, err
			}
			names = append(names, i...)
		}
		return names, nil
	case *parse.TemplateNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined template specified")
		}
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined action in template")
		}
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined branch")
		}
		names, err := identifiers(n.Pipe)
		if err != nil {
			return names, err
		}
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				i, err := identifiers(l)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				i, err := identifiers(a)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.FieldNode:
		return n.Ident, nil
	case *parse.VariableNode:
		return n.Ident, nil
	}
	return nil, nil
}

type Values struct {
	Messages   []Message
	Tools      []Tool
	Think      bool
	ThinkLevel string
	IsThinkSet bool
}

func (t *Template) Execute(w io.Writer, v Values) error {
	system, messages := collate(v.Messages)
	vars, err := t.Vars()
	if err != nil {
		return err
	}
	if contains(vars, "messages") {
		return t.Template.Execute(w, map[string]any{
			"System":     system,
			"Messages":   convertMessages(messages),
			"Tools":      convertTools(v.Tools),
			"Response":   "",
			"Think":      v.Think,
			"ThinkLevel": v.ThinkLevel,
			"IsThinkSet": v.IsThinkSet,
		})
	}
	// legacy mode: one execution per (system, prompt, response) turn
	system = ""
	var b bytes.Buffer
	var prompt, response string
	values := func() map[string]any {
		return map[string]any{
			"System": system, "Prompt": prompt, "Response": response,
			"Think": v.Think, "ThinkLevel": v.ThinkLevel, "IsThinkSet": v.IsThinkSet,
		}
	}
	execute := func() error {
		if err := t.Template.Execute(&b, values()); err != nil {
			return err
		}
		system, prompt, response = "", "", ""
		return nil
	}
	for _, m := range messages {
		switch m.Role {
		case "system":
			if prompt != "" || response != "" {
				if err := execute(); err != nil {
					return err
				}
			}
			system = m.Content
		case "user":
			if response != "" {
				if err := execute(); err != nil {
					return err
				}
			}
			prompt = m.Content
		case "assistant":
			response = m.Content
		}
	}
	// the last turn: everything from {{ .Response }} on is cut
	var cut bool
	nodes := deleteNode(t.Template.Root.Copy(), func(n parse.Node) bool {
		if f, ok := n.(*parse.FieldNode); ok && contains(f.Ident, "Response") {
			cut = true
			return false
		}
		return cut
	})
	tree := parse.Tree{Root: nodes.(*parse.ListNode)}
	last := template.Must(template.New("").AddParseTree("", &tree))
	if err := last.Execute(&b, values()); err != nil {
		return err
	}
	_, err = io.Copy(w, &b)
	return err
}

func deleteNode(n parse.Node, fn func(parse.Node) bool) parse.Node {
	var walk func(n parse.Node) parse.Node
	walk = func(n parse.Node) parse.Node {
		if fn(n) {
			return nil
		}
		switch t := n.(type) {
		case *parse.ListNode:
			var nodes []parse.Node
			for _, c := range t.Nodes {
				if n := walk(c); n != nil {
					nodes = append(nodes, n)
				}
			}
			t.Nodes = nodes
			return t
		case *parse.IfNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.WithNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.RangeNode:
			t.BranchNode = *walk(&t.BranchNode).(*parse.BranchNode)
		case *parse.BranchNode:
			t.List = walk(t.List).(*parse.ListNode)
			if t.ElseList != nil {
				t.ElseList = walk(t.ElseList).(*parse.ListNode)
			}
		case *parse.ActionNode:
			n := walk(t.Pipe)
			if n == nil {
				return nil
			}
			t.Pipe = n.(*parse.PipeNode)
		case *parse.PipeNode:
			var cmds []*parse.CommandNode
			for _, c := range t.Cmds {
				var args []parse.Node
				for _, a := range c.Args {
					if n := walk(a); n != nil {
						args = append(args, n)
					}
				}
				if len(args) == 0 {
					return nil
				}
				c.Args = args
				cmds = append(cmds, c)
			}
			if len(cmds) == 0 {
				return nil
			}
			t.Cmds = cmds
		}
		return n
	}
	return walk(n)
}

// ---- thinking/template.go InferTags, server/images.go capabilities ----------------------------

func visit(n parse.Node, enter func(parse.Node) bool, exit func(parse.Node)) {
	if n == nil || !enter(n) {
		return
	}
	switch x := n.(type) {
	case *parse.ListNode:
		for _, c := range x.Nodes {
			visit(c, enter, exit)
		}
	case *parse.BranchNode:
		if x.Pipe != nil {
			visit(x.Pipe, enter, exit)
		}
		if x.List != nil {
			visit(x.List, enter, exit)
		}
		if x.ElseList != nil {
			visit(x.ElseList, enter, exit)
		}
	case *parse.ActionNode:
		visit(x.Pipe, enter, exit)
	case *parse.WithNode:
		visit(&x.BranchNode, enter, exit)
	case *parse.RangeNode:
		visit(&x.BranchNode, enter, exit)
	case *parse.IfNode:
		visit(&x.BranchNode, enter, exit)
	case *parse.TemplateNode:
		visit(x.Pipe, enter, exit)
	case *parse.PipeNode:
		for _, c := range x.Cmds {
			visit(c, enter, exit)
		}
	case *parse.CommandNode:
		for _, a := range x.Args {
			visit(a, enter, exit)
		}
	}
	if exit != nil {
		exit(n)
	}
}

func rangeUsesField(r *parse.RangeNode, field string) bool {
	found := false
	visit(r.BranchNode.Pipe, func(n parse.Node) bool {
		if f, ok := n.(*parse.FieldNode); ok && f.Ident[0] == field {
			found = true
		}
		return true
	}, nil)
	return found
}

// InferTags: a {{ .Thinking }} inside a range over .Messages; the nearest list's first and last
// text nodes (trimmed) are the opening and closing thinking tags.
func InferTags(t *template.Template) (string, string) {
	var ancestors []parse.Node
	opening, closing := "", ""
	enter := func(n parse.Node) bool {
		ancestors = append(ancestors, n)
		if f, ok := n.(*parse.FieldNode); ok && len(f.Ident) > 0 && f.Ident[0] == "Thinking" {
			var rng *parse.RangeNode
			for i := len(ancestors) - 1; i >= 0; i-- {
				if r, ok := ancestors[i].(*parse.RangeNode); ok {
					rng = r
					break
				}
			}
			if rng == nil || !rangeUsesField(rng, "Messages") {
				return true
			}
			for i := len(ancestors) - 1; i >= 0; i-- {
				if l, ok := ancestors[i].(*parse.ListNode); ok {
					if t, ok := l.Nodes[0].(*parse.TextNode); ok {
						opening = strings.TrimSpace(t.String())
					}
					if t, ok := l.Nodes[len(l.Nodes)-1].(*parse.TextNode); ok {
						closing = strings.TrimSpace(t.String())
					}
					break
				}
			}
		}
		return true
	}
	exit := func(parse.Node) { ancestors = ancestors[:len(ancestors)-1] }
	visit(t.Root, enter, exit)
	return opening, closing
}

func capabilities(t *Template) ([]string, string, string) {
	var caps []string
	vars, _ := t.Vars()
	if contains(vars, "tools") {
		caps = append(caps, "tools")
	}
	if contains(vars, "suffix") {
		caps = append(caps, "insert")
	}
	open, close := InferTags(t.Template)
	if open != "" && close != "" {
		caps = append(caps, "thinking")
	}
	return caps, open, close
}

func toolRoundTrip(t *Template) bool {
	vars, err := t.Vars()
	if err != nil || !contains(vars, "tools") || !contains(vars, "toolcalls") {
		return false
	}
	return strings.Contains(t.raw, `eq .Role "tool"`) || strings.Contains(t.raw, "tool_response") ||
		strings.Contains(t.raw, "TOOL_RESULTS")
}

// ---- the request path (server/routes.go ChatHandler, server/prompt.go renderPrompt) ----------

type chatCase struct {
	ID       string      `json:"id"`
	Messages []Message   `json:"messages"`
	Tools    []Tool      `json:"tools"`
	Think    *ThinkValue `json:"think"`
}

type input struct {
	Modelfile     *string    `json:"modelfile"`
	Template      string     `json:"template"`
	System        string     `json:"system"`
	ModelMessages []Message  `json:"model_messages"`
	Now           string     `json:"now"`
	Cases         []chatCase `json:"cases"`
}

type result struct {
	ID     string `json:"id"`
	Prompt string `json:"prompt"`
	Error  string `json:"error,omitempty"`
}

type output struct {
	Vars          []string  `json:"vars"`
	Capabilities  []string  `json:"capabilities"`
	ThinkingTags  [2]string `json:"thinking_tags"`
	ToolRoundTrip bool      `json:"tool_round_trip"`
	Results       []result  `json:"results"`
}

// render follows ChatHandler: requests with tools need the tools capability (server/images.go
// CheckCapabilities: "does not support tools"); think defaults to true for a thinking-capable model
// and think=true is refused otherwise ("%q does not support thinking", the model name quoted).
func render(t *Template, caps []string, in *input, c chatCase) (string, error) {
	if len(c.Tools) > 0 && !contains(caps, "tools") {
		return "", errors.New("does not support tools")
	}
	think := c.Think
	if contains(caps, "thinking") {
		if think == nil {
			think = &ThinkValue{Value: true}
		}
	} else if think != nil && think.Bool() {
		return "", fmt.Errorf("%q does not support thinking", "model")
	}
	if len(c.Messages) == 0 {
		return "", nil // Ollama answers done_reason "load" without rendering
	}
	msgs := append(append([]Message{}, in.ModelMessages...), c.Messages...)
	if c.Messages[0].Role != "system" && in.System != "" {
		msgs = append([]Message{{Role: "system", Content: in.System}}, msgs...)
	}
	var b bytes.Buffer
	err := t.Execute(&b, Values{
		Messages: msgs, Tools: c.Tools, Think: think.Bool(), ThinkLevel: think.String(), IsThinkSet: think != nil,
	})
	return b.String(), err
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	if in.Modelfile != nil {
		writeJSON(parseModelfile(*in.Modelfile))
		return
	}
	if in.Now != "" {
		fixed, err := time.Parse(time.RFC3339, in.Now)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad now:", err)
			os.Exit(2)
		}
		now = func() time.Time { return fixed }
	}
	t, err := Parse(in.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, "template does not parse:", err)
		os.Exit(3)
	}
	var out output
	out.Vars, _ = t.Vars()
	var open, close string
	out.Capabilities, open, close = capabilities(t)
	out.ThinkingTags = [2]string{open, close}
	out.ToolRoundTrip = toolRoundTrip(t)
	for _, c := range in.Cases {
		p, err := render(t, out.Capabilities, &in, c)
		r := result{ID: c.ID, Prompt: p}
		if err != nil {
			r.Error = err.Error()
		}
		out.Results = append(out.Results, r)
	}
	writeJSON(out)
}

func writeJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ---- parser/parser.go ParseFile ---------------------------------------------------------------

type command struct {
	Name string `json:"name"`
	Args string `json:"args"`
}

type parsed struct {
	Commands []command `json:"commands"`
	Error    string    `json:"error,omitempty"`
}

type pstate int

const (
	stateNil pstate = iota
	stateName
	stateValue
	stateParameter
	stateMessage
	stateComment
)

var errInvalidCommand = errors.New("command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"")

func isAlpha(r rune) bool   { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func isNumber(r rune) bool  { return r >= '0' && r <= '9' }
func isSpace(r rune) bool   { return r == ' ' || r == '\t' }
func isNewline(r rune) bool { return r == '\r' || r == '\n' }

func isValidCommand(cmd string) bool {
	switch strings.ToLower(cmd) {
	case "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires":
		return true
	}
	return false
}

func parseRune(r rune, cs pstate) (pstate, rune, error) {
	switch cs {
	case stateNil:
		switch {
		case r == '#':
			return stateComment, 0, nil
		case isSpace(r), isNewline(r):
			return stateNil, 0, nil
		default:
			return stateName, r, nil
		}
	case stateName:
		switch {
		case isAlpha(r):
			return stateName, r, nil
		case isSpace(r):
			return stateValue, 0, nil
		default:
			return stateNil, 0, errInvalidCommand
		}
	case stateValue:
		switch {
		case isNewline(r), isSpace(r):
			return stateNil, r, nil
		default:
			return stateValue, r, nil
		}
	case stateParameter:
		switch {
		case isAlpha(r), isNumber(r), r == '_':
			return stateParameter, r, nil
		case isSpace(r):
			return stateValue, 0, nil
		default:
			return stateNil, 0, io.ErrUnexpectedEOF
		}
	case stateMessage:
		switch {
		case isAlpha(r):
			return stateMessage, r, nil
		case isSpace(r):
			return stateValue, 0, nil
		default:
			return stateNil, 0, io.ErrUnexpectedEOF
		}
	case stateComment:
		if isNewline(r) {
			return stateNil, 0, nil
		}
		return stateComment, 0, nil
	}
	return stateNil, 0, errors.New("")
}

func unquote(s string) (string, bool) {
	if len(s) >= 3 && s[:3] == `"""` {
		if len(s) >= 6 && s[len(s)-3:] == `"""` {
			return s[3 : len(s)-3], true
		}
		return "", false
	}
	if len(s) >= 1 && s[0] == '"' {
		if len(s) >= 2 && s[len(s)-1] == '"' {
			return s[1 : len(s)-1], true
		}
		return "", false
	}
	return s, true
}

func parseModelfile(text string) parsed {
	var out parsed
	var cmd command
	var curr pstate
	var b bytes.Buffer
	var role string
	fail := func(err error) parsed { out.Error = err.Error(); return out }
	for _, r := range strings.TrimPrefix(text, "\ufeff") {
		next, r, err := parseRune(r, curr)
		if err != nil {
			return fail(err)
		}
		if next != curr {
			switch curr {
			case stateName:
				if !isValidCommand(b.String()) {
					return fail(errInvalidCommand)
				}
				switch s := strings.ToLower(b.String()); s {
				case "from":
					cmd.Name = "model"
				case "parameter":
					next = stateParameter
				case "message":
					next = stateMessage
					cmd.Name = s
				default:
					cmd.Name = s
				}
			case stateParameter:
				cmd.Name = b.String()
			case stateMessage:
				role = b.String()
			case stateValue:
				s, ok := unquote(strings.TrimSpace(b.String()))
				if !ok || isSpace(r) {
					b.WriteRune(r)
					continue
				}
				if role != "" {
					s = role + ": " + s
					role = ""
				}
				cmd.Args = s
				out.Commands = append(out.Commands, cmd)
			}
			b.Reset()
			curr = next
		}
		if strconv.IsPrint(r) {
			b.WriteRune(r)
		}
	}
	switch curr {
	case stateComment, stateNil:
	case stateValue:
		s, ok := unquote(strings.TrimSpace(b.String()))
		if !ok {
			return fail(io.ErrUnexpectedEOF)
		}
		if role != "" {
			s = role + ": " + s
		}
		cmd.Args = s
		out.Commands = append(out.Commands, cmd)
	default:
		return fail(io.ErrUnexpectedEOF)
	}
	for _, c := range out.Commands {
		if c.Name == "model" {
			return out
		}
	}
	return fail(errors.New("no FROM line"))
}
