package lineage

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAppendEventMatchesJSON: appendEvent gives json.Marshal's bytes for
// events with every field empty and set, strings that need escaping
// (quotes, backslashes, control characters, HTML characters, U+2028,
// invalid UTF-8) and random ones, and the quality's float formats.
func TestAppendEventMatchesJSON(t *testing.T) {
	q := func(f float64) *float64 { return &f }
	strs := []string{"", "a", `"quoted" \ back`, "tab\tnew\nline\rcr\bbs\fff\x00nul\x1fus\x7fdel",
		"<script>&amp;</script>", "line\u2028sep\u2029par", "bad \xff\xfe utf8 \xe2\x82", "héllo 世界 🙂",
		"https://example.com/a?b=1&c=<2>"}
	events := []Event{{}, {
		Step: "filter-cc", Kind: "filter", Dir: "filter-cc/tasks/00001", Shard: "part-00000.arrow", Row: 42, Kept: true,
		Reason: "gopher", Value: "0.5", DupOf: "x", Input: "in.warc.gz", URL: "https://e.com/", RecordKey: "<urn:uuid:1>",
		Rules: []RuleDecision{{Rule: "a", Decision: "pass"}, {Rule: "b", Decision: "drop", Value: "3"}}, Quality: q(0.25),
		Tokens: 10, TokenOffset: -3, Format: "megatron", File: "cc.bin", ByteOffset: 1 << 40, Length: 7, DocIndex: 9,
		Time: "2026-12-06T00:00:00Z", Bytes: 123, Source: "cc", Lang: "en",
	}}
	for _, f := range []float64{0, math.Copysign(0, -1), 1e-7, 1e-6, 123456789, 1e20, 1e21, 1.5e300, math.SmallestNonzeroFloat64, 0.1 + 0.2} {
		events = append(events, Event{Quality: q(f)})
	}
	for _, s := range strs {
		events = append(events, Event{Step: s, Kind: s, URL: s, Rules: []RuleDecision{{Rule: s, Decision: s, Value: s}}, Lang: s})
	}
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []rune{'a', 'z', '"', '\\', '<', '>', '&', '\n', 0, 0x1f, 0x7f, 'é', '\u2028', '\u2029', 0xfffd, '🙂'}
	randStr := func() string {
		var sb strings.Builder
		for n := rng.IntN(12); n > 0; n-- {
			if rng.IntN(10) == 0 {
				sb.WriteByte(byte(0x80 + rng.IntN(0x80))) // a stray continuation or lead byte
				continue
			}
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	for i := 0; i < 2000; i++ {
		e := Event{Step: randStr(), Kind: randStr(), Dir: randStr(), Shard: randStr(), Row: rng.Int64() - rng.Int64(),
			Kept: rng.IntN(2) == 0, Reason: randStr(), Value: randStr(), DupOf: randStr(), Input: randStr(), URL: randStr(),
			RecordKey: randStr(), Tokens: int64(rng.IntN(3)), Format: randStr(), File: randStr(), DocIndex: int64(rng.IntN(5)),
			Time: randStr(), Bytes: int64(rng.IntN(2)) * rng.Int64(), Source: randStr(), Lang: randStr()}
		if rng.IntN(2) == 0 {
			e.Quality = q(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20)))
		}
		for n := rng.IntN(3); n > 0; n-- {
			e.Rules = append(e.Rules, RuleDecision{Rule: randStr(), Decision: randStr(), Value: randStr()})
		}
		events = append(events, e)
	}
	for i, e := range events {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendEvent([]byte("prefix"), &e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
	}
	if _, err := appendEvent(nil, &Event{Quality: q(math.NaN())}); err == nil {
		t.Fatal("a NaN quality marshalled without an error")
	}
}
