package ingest

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func TestNodeText(t *testing.T) {
	src := `<div><h2>Title  here</h2><p>First <b>bold</b>
	paragraph,<br>second line.</p><ul><li>one</li><li>two <i>items</i></li></ul>
	<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td></td></tr></table>
	<pre>code  line 1
code line 2</pre><script>var x;</script><p>  </p><p>last</p></div>`
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"Title here", "First bold paragraph,", "second line.", "one", "two items",
		"a | b", "c |", "code line 1", "code line 2", "last",
	}, "\n")
	if got := nodeText(doc); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := nodeText(&html.Node{Type: html.DocumentNode}); got != "" {
		t.Fatalf("empty tree: %q", got)
	}
}
