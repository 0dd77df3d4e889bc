package ingest

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// TestDetectLanguageDeterministicOnTies feeds text on which whatlanggo's
// top candidates tie (Latin-1 mojibake of Chinese, as a mis-decoded gb2312
// page gives): the answer must not change from call to call.
func TestDetectLanguageDeterministicOnTies(t *testing.T) {
	text := strings.Repeat("Ò»¸öÔ¼¶¨£¬ÐÅÊØ15Äê£¬¸ÐÈËÖÁÉî£»Ò»¶ÎÕæÇé£¬ÑÓÐø15Äê£¬´ßÈËÀáÏÂ¡£6ÔÂ3ÈÕÉÏÎç£¬»°¾ç¡¶Ô¼¶¨ÎÞÆÚÏÞ¡·È«Ê¡", 3)
	first, score := DetectLanguage(text)
	for i := 0; i < 200; i++ {
		if l, s := DetectLanguage(text); l != first || s != score {
			t.Fatalf("call %d: %q %v, first call %q %v", i, l, s, first, score)
		}
	}
}

// TestGB2312DeclaredAfterScripts is the shape of archive.org's copies of
// Chinese pages: kilobytes of injected scripts (one with charset="utf-8")
// before the page's own <meta> gb2312 declaration.
func TestGB2312DeclaredAfterScripts(t *testing.T) {
	gb := mustEncode(t, "<p>一个约定，信守15年，感人至深；一段真情，延续15年，催人泪下。六月三日上午，话剧《约定无期限》全省各市巡演活动来到张家口。</p>", simplifiedchinese.GBK.NewEncoder().String)
	head := `<html><head><script src="/analytics.js" charset="utf-8"></script><script>` + strings.Repeat("var x = 1;", 150) + `</script>` +
		`<meta http-equiv="Content-Type" content="text/html; charset=gb2312"/><title>t</title></head><body>`
	page := append(append([]byte(head), gb...), "</body></html>"...)
	text, cs := toUTF8(page, "", true)
	if cs != "gbk" && cs != "gb2312" && cs != "gb18030" {
		t.Errorf("charset %q, want the declared gb2312 (gbk)", cs)
	}
	if !strings.Contains(text, "感人至深") {
		t.Errorf("Chinese text not decoded: %.200q", text)
	}
}
