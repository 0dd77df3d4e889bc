package filter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// RuleOptOut is the opt-out rule's name in Config.Rules.
const RuleOptOut = "optout"

// Drop reasons of the opt-out rule. The value is the list entry (or the
// robots.txt group and pattern) that matched.
const (
	OptOutListed = "optout/listed"
	OptOutRobots = "optout/robots"
	// OptOutTakedown is a document a takedown removed from an earlier
	// run (by id or URL; the value says which).
	OptOutTakedown = "optout/takedown"
)

// DefaultOptOutAgents are the AI-training crawlers whose robots.txt groups
// the opt-out rule honours: Common Crawl's CCBot, OpenAI's GPTBot and
// Google's Google-Extended token.
var DefaultOptOutAgents = []string{"CCBot", "GPTBot", "Google-Extended"}

// OptOut drops documents whose URL a publisher has opted out of training:
// by an entry of a list, or by a robots.txt that disallows one of the
// training crawlers. The semantics (docs/lineage.md):
//
//   - "example.com" (no path) matches the host example.com and every
//     subdomain of it (www.example.com, a.b.example.com), any scheme, port
//     and path; not "notexample.com".
//   - "example.com/news/" or "https://example.com/news/" (a path) matches
//     the host example.com exactly (not its subdomains) and the URLs whose
//     path (with the query) starts with "/news/": a plain prefix, as
//     robots.txt paths are, so "/news" also matches "/newsletter".
//   - Hosts and schemes compare case-insensitively, paths case-sensitively;
//     a trailing dot on the host and the port are ignored.
//
// A robots.txt applies to the host it is given for (Robots maps host to
// file) and follows RFC 9309: for each agent, the groups naming it, else
// the "*" group; the longest matching Allow or Disallow pattern wins,
// Allow on a tie; "*" in a pattern matches any run of characters and a
// final "$" anchors it. A URL is opted out when any agent may not fetch it.
type OptOut struct {
	// Entries are list entries given inline; Lists are files of entries,
	// one per line, "#" starting a comment.
	Entries []string `yaml:"entries"`
	Lists   []string `yaml:"lists"`
	// Robots maps a host to its robots.txt file.
	Robots map[string]string `yaml:"robots"`
	// Agents are the user agents whose robots.txt rules count; empty means
	// DefaultOptOutAgents. Agent adds one more (the user's own crawler)
	// to the defaults.
	Agents []string `yaml:"agents"`
	Agent  string   `yaml:"agent"`
	// Takedowns are takedown lists (smelt takedown's takedown-list.jsonl,
	// in the dedup store): their documents are dropped by id and by exact
	// URL, so a later run keeps them out.
	Takedowns []string `yaml:"takedowns"`

	mu      sync.Mutex // Load may be called by several tasks at once
	loaded  bool
	domains map[string]string     // host -> entry: the host and its subdomains
	paths   map[string][]pathRule // exact host -> path prefixes
	robots  map[string]*robotsRules
	takenID map[string]bool
	takenU  map[string]bool
}

type pathRule struct{ prefix, entry string }

// Name implements Rule.
func (o *OptOut) Name() string { return RuleOptOut }

// Reasons implements Rule.
func (o *OptOut) Reasons() []string { return []string{OptOutListed, OptOutRobots, OptOutTakedown} }

// Load reads the lists and robots.txt files. The rule loads itself on
// first use otherwise, so a bad file is reported by Config.Pipeline.
func (o *OptOut) Load() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.loaded {
		return nil
	}
	o.domains = map[string]string{}
	o.paths = map[string][]pathRule{}
	o.robots = map[string]*robotsRules{}
	for _, e := range o.Entries {
		if err := o.add(e); err != nil {
			return fmt.Errorf("optout: entry %q: %w", e, err)
		}
	}
	for _, path := range o.Lists {
		lines, err := readListFile(path)
		if err != nil {
			return fmt.Errorf("optout: %w", err)
		}
		for i, e := range lines {
			if err := o.add(e); err != nil {
				return fmt.Errorf("optout: %s: entry %d %q: %w", path, i+1, e, err)
			}
		}
	}
	agents := o.Agents
	if len(agents) == 0 {
		agents = DefaultOptOutAgents
	}
	if o.Agent != "" {
		agents = append(append([]string(nil), agents...), o.Agent)
	}
	hosts := make([]string, 0, len(o.Robots))
	for h := range o.Robots {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		data, err := os.ReadFile(o.Robots[h])
		if err != nil {
			return fmt.Errorf("optout: robots.txt of %s: %w", h, err)
		}
		o.robots[normHost(h)] = ParseRobots(data, agents)
	}
	o.takenID, o.takenU = map[string]bool{}, map[string]bool{}
	for _, path := range o.Takedowns {
		if err := o.loadTakedowns(path); err != nil {
			return err
		}
	}
	for h := range o.paths {
		ps := o.paths[h]
		// Longest prefix first, so the reported entry is the most specific.
		sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].prefix) > len(ps[j].prefix) })
	}
	o.loaded = true
	return nil
}

func (o *OptOut) add(e string) error {
	e = strings.TrimSpace(e)
	if e == "" {
		return nil
	}
	host, path, err := splitEntry(e)
	if err != nil {
		return err
	}
	if path == "" {
		o.domains[host] = e
		return nil
	}
	o.paths[host] = append(o.paths[host], pathRule{prefix: path, entry: e})
	return nil
}

// splitEntry parses a list entry: a host, a host and path, or a URL.
func splitEntry(e string) (host, path string, err error) {
	s := e
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", err
	}
	host = normHost(u.Hostname())
	if host == "" {
		return "", "", fmt.Errorf("no host")
	}
	path = u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	if path == "/" {
		// "example.com/" is the whole host, like "example.com".
		path = ""
	}
	return host, path, nil
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// loadTakedowns reads a takedown list: JSON lines with "id" and "url". A
// missing list is empty (no takedown yet).
func (o *OptOut) loadTakedowns(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("optout: %w", err)
	}
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e struct{ ID, URL string }
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("optout: %s: line %d: %w", path, i+1, err)
		}
		if e.ID != "" {
			o.takenID[e.ID] = true
		}
		if e.URL != "" {
			o.takenU[e.URL] = true
		}
	}
	return nil
}

// Check implements Rule.
func (o *OptOut) Check(d *shards.Document) (string, string) {
	if !o.loaded {
		// Config.Pipeline loads the rule; a rule built by hand and never
		// loaded has no entries.
		return "", ""
	}
	if o.takenID[d.ID] {
		return OptOutTakedown, "id " + d.ID
	}
	if d.URL == "" {
		return "", ""
	}
	if o.takenU[d.URL] {
		return OptOutTakedown, "url " + d.URL
	}
	u, err := url.Parse(d.URL)
	if err != nil || u.Host == "" {
		return "", ""
	}
	host := normHost(u.Hostname())
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	for h := host; h != ""; {
		if e, ok := o.domains[h]; ok {
			return OptOutListed, e
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
	for _, p := range o.paths[host] {
		if strings.HasPrefix(path, p.prefix) {
			return OptOutListed, p.entry
		}
	}
	if r := o.robots[host]; r != nil {
		if why := r.disallowed(path); why != "" {
			return OptOutRobots, host + " " + why
		}
	}
	return "", ""
}

// robotsRules are the groups of one robots.txt that apply to the agents.
type robotsRules struct {
	agents []agentRules
}

type agentRules struct {
	agent string // the agent, or "*" for the default group it fell back to
	rules []robotsRule
}

type robotsRule struct {
	allow   bool
	pattern string
}

// ParseRobots parses a robots.txt for the given user agents (RFC 9309):
// each agent gets the rules of every group naming its product token
// (case-insensitively), or of the "*" groups when none names it. Unknown
// lines and lines without a colon are ignored, as crawlers do.
func ParseRobots(data []byte, agents []string) *robotsRules {
	type group struct {
		agents []string
		rules  []robotsRule
	}
	var groups []*group
	var cur *group
	inAgents := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch k {
		case "user-agent":
			if !inAgents || cur == nil {
				cur = &group{}
				groups = append(groups, cur)
			}
			cur.agents = append(cur.agents, strings.ToLower(v))
			inAgents = true
		case "allow", "disallow":
			inAgents = false
			if cur == nil {
				continue
			}
			if v == "" {
				continue // "Disallow:" allows everything
			}
			cur.rules = append(cur.rules, robotsRule{allow: k == "allow", pattern: v})
		default:
			// Sitemap, Crawl-delay, ...: they end no group.
		}
	}
	out := &robotsRules{}
	for _, a := range agents {
		la := strings.ToLower(a)
		ar := agentRules{agent: a}
		found := false
		for _, g := range groups {
			for _, ga := range g.agents {
				if ga == la {
					ar.rules = append(ar.rules, g.rules...)
					found = true
					break
				}
			}
		}
		if !found {
			ar.agent = "*"
			for _, g := range groups {
				for _, ga := range g.agents {
					if ga == "*" {
						ar.rules = append(ar.rules, g.rules...)
						break
					}
				}
			}
		}
		out.agents = append(out.agents, ar)
	}
	return out
}

// disallowed returns "user-agent AGENT: disallow PATTERN" for the first
// agent that may not fetch path, or "".
func (r *robotsRules) disallowed(path string) string {
	for _, a := range r.agents {
		best, bestLen, allow := "", -1, true
		for _, rule := range a.rules {
			if !robotsMatch(rule.pattern, path) {
				continue
			}
			n := len(rule.pattern)
			if n > bestLen || n == bestLen && rule.allow && !allow {
				best, bestLen, allow = rule.pattern, n, rule.allow
			}
		}
		if bestLen >= 0 && !allow {
			return "user-agent " + a.agent + ": disallow " + best
		}
	}
	return ""
}

// robotsMatch matches a robots.txt path pattern: a prefix, with "*" for
// any run of characters and a final "$" anchoring the end.
func robotsMatch(pattern, path string) bool {
	anchored := strings.HasSuffix(pattern, "$")
	if anchored {
		pattern = pattern[:len(pattern)-1]
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(path, parts[0]) {
		return false
	}
	rest := path[len(parts[0]):]
	for i := 1; i < len(parts); i++ {
		p := parts[i]
		if i == len(parts)-1 && anchored {
			return strings.HasSuffix(rest, p)
		}
		j := strings.Index(rest, p)
		if j < 0 {
			return false
		}
		rest = rest[j+len(p):]
	}
	return !anchored || rest == ""
}

// resolvePaths makes relative list and robots.txt paths relative to dir.
func (o *OptOut) resolvePaths(dir string) {
	if o == nil {
		return
	}
	for i, p := range o.Lists {
		if !filepath.IsAbs(p) {
			o.Lists[i] = filepath.Join(dir, p)
		}
	}
	for i, p := range o.Takedowns {
		if !filepath.IsAbs(p) {
			o.Takedowns[i] = filepath.Join(dir, p)
		}
	}
	for h, p := range o.Robots {
		if !filepath.IsAbs(p) {
			o.Robots[h] = filepath.Join(dir, p)
		}
	}
}
