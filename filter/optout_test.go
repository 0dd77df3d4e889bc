package filter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestOptOutListSemantics: a host entry drops the host and its
// subdomains, a host-path entry only that host's paths under the prefix.
func TestOptOutListSemantics(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "optout.txt")
	if err := os.WriteFile(list, []byte("# publishers\nnews.example\nhttps://Blog.Example.org/private/\nshop.example.net/cart?\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &OptOut{Lists: []string{list}, Entries: []string{"whole.example.com/"}}
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url, reason, value string
	}{
		{"https://news.example/a", OptOutListed, "news.example"},
		{"http://www.news.example:8080/b?x=1", OptOutListed, "news.example"},
		{"https://a.b.news.example./", OptOutListed, "news.example"},
		{"https://notnews.example/a", "", ""},
		{"https://news.example.com/a", "", ""},
		{"https://blog.example.org/private/diary.html", OptOutListed, "https://Blog.Example.org/private/"},
		{"https://blog.example.org/private", "", ""},
		{"https://blog.example.org/public/x", "", ""},
		{"https://www.blog.example.org/private/x", "", ""}, // a path entry is for its exact host
		{"https://shop.example.net/cart?id=3", OptOutListed, "shop.example.net/cart?"},
		{"https://shop.example.net/cart", "", ""},
		{"https://whole.example.com/anything", OptOutListed, "whole.example.com/"},
		{"https://sub.whole.example.com/", OptOutListed, "whole.example.com/"},
		{"", "", ""},
	}
	for _, c := range cases {
		r, v := o.Check(&shards.Document{URL: c.url})
		if r != c.reason || v != c.value {
			t.Errorf("%q: got (%q, %q), want (%q, %q)", c.url, r, v, c.reason, c.value)
		}
	}
}

// TestOptOutRobots: the training crawlers' groups (and the user's agent)
// are honoured, "*" only where an agent has no group of its own, longest
// match wins with Allow on ties, wildcards and "$".
func TestOptOutRobots(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.txt", `# site a
User-agent: *
Disallow: /cgi-bin/

User-agent: GPTBot
User-agent: CCBot
Disallow: /articles/
Allow: /articles/free/
Disallow: /*.pdf$
Sitemap: https://a.example/sitemap.xml
`)
	b := write("b.txt", "User-agent: Google-Extended\nDisallow: /\n")
	c := write("c.txt", "User-agent: *\nDisallow: /\n\nUser-agent: CCBot\nUser-agent: GPTBot\nUser-agent: Google-Extended\nUser-agent: MyBot\nAllow: /\n")
	d := write("d.txt", "User-agent: MyBot\nDisallow: /mine\n")
	o := &OptOut{Robots: map[string]string{"a.example": a, "B.example": b, "c.example": c, "d.example": d}, Agent: "MyBot"}
	if err := o.Load(); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ url, reason, value string }{
		{"https://a.example/articles/x", OptOutRobots, "a.example user-agent CCBot: disallow /articles/"},
		{"https://a.example/articles/free/x", "", ""},
		{"https://a.example/docs/x.pdf", OptOutRobots, "a.example user-agent CCBot: disallow /*.pdf$"},
		{"https://a.example/docs/x.pdf?v=1", "", ""},
		// Google-Extended has no group in a: it falls back to "*".
		{"https://a.example/cgi-bin/q", OptOutRobots, "a.example user-agent *: disallow /cgi-bin/"},
		{"https://a.example/", "", ""},
		{"https://www.a.example/articles/x", "", ""}, // robots.txt is per host
		{"https://b.example/anything", OptOutRobots, "b.example user-agent Google-Extended: disallow /"},
		{"https://c.example/x", "", ""},
		{"https://d.example/mine/1", OptOutRobots, "d.example user-agent MyBot: disallow /mine"},
		{"https://d.example/yours", "", ""},
	}
	for _, c := range cases {
		r, v := o.Check(&shards.Document{URL: c.url})
		if r != c.reason || v != c.value {
			t.Errorf("%q: got (%q, %q), want (%q, %q)", c.url, r, v, c.reason, c.value)
		}
	}
}

// TestOptOutConfig: the rule is in the rule table, reads its files
// relative to the recipe, and a missing file is an error naming it.
func TestOptOutConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "list.txt"), []byte("x.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig([]byte("rules: [optout]\noptout:\n  lists: [list.txt]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ResolvePaths(dir)
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	d := &shards.Document{URL: "http://x.example/", Text: "hello"}
	if o := p.Apply(d); o.Reason != OptOutListed || o.Value != "x.example" || d.Drop == nil {
		t.Fatalf("outcome %+v", o)
	}
	c, _ = ParseConfig([]byte("rules: [optout]\noptout:\n  lists: [missing.txt]\n"))
	c.ResolvePaths(dir)
	if _, err := c.Pipeline(); err == nil {
		t.Fatal("a missing list file is not an error")
	}
}
