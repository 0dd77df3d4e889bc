package filter

import (
	"testing"

	"github.com/smelt-dev/smelt/ingest"
)

// TestRealLanguage labels real crawl documents with ingest's detector, as a
// pipeline does, and filters for English.
func TestRealLanguage(t *testing.T) {
	docs := crawlDocs(t)
	l := &Language{Languages: []string{"en"}, MinScore: 0.65}
	for _, c := range []struct{ url, reason string }{
		{"mayoclinic.org", ""}, {"cdc.gov/pcd", ""}, {"activecities.com", ""},
		{"003ms.ru", LangNotListed}, {"nn.ru/?page=blog&blog_id=518109", LangNotListed},
		{"biosmanagement.it", LangNotListed}, {"an.wikipedia.org", LangNotListed},
	} {
		d := *findDoc(t, docs, c.url)
		d.Lang, d.LangScore = ingest.DetectLanguage(d.Text)
		if reason, value := l.Check(&d); reason != c.reason {
			t.Errorf("%s (%s %.2f): %q %q, want %q", c.url, d.Lang, d.LangScore, reason, value, c.reason)
		}
	}
}

func TestRealURLBlock(t *testing.T) {
	docs := crawlDocs(t)
	u := &URLBlock{Domains: []string{"biomedsearch.com", "nn.ru"}, Substrings: []string{"casino"}}
	blocked := map[string]int{}
	for _, d := range docs {
		reason, _ := u.Check(d)
		blocked[reason]++
	}
	// Independently counted from the MANIFEST's description and the URLs:
	// five biomedsearch.com pages, two nn.ru blog pages (010387.www.nn.ru),
	// and one abc.net.au article about a casino.
	if blocked[URLBlockedHost] != 7 || blocked[URLBlockedMatch] != 1 {
		t.Errorf("blocked %v, want 7 by domain and 1 by substring", blocked)
	}
	if r, _ := u.Check(findDoc(t, docs, "christmas-island-casino")); r != URLBlockedMatch {
		t.Errorf("casino article: %q", r)
	}
	if r, _ := u.Check(findDoc(t, docs, "mayoclinic.org")); r != "" {
		t.Errorf("mayoclinic: %q", r)
	}
}
