package tokenize

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVsHF compares smelt with Hugging Face tokenizers 0.23.2 (Node
// binding, one Rayon thread) on each model's tokenizer.json in the same run,
// on the same real documents encoded one at a time (and a Unigram
// tokenizer.json made from the SentencePiece test model): CPU seconds to load the
// file (process CPU, GC included) and to encode (smelt: its thread's CPU;
// HF: the node process's CPU). Run it with
//
//	go test ./tokenize/ -run '^$' -bench BenchmarkVsHF -benchtime 1x
func BenchmarkVsHF(b *testing.B) {
	node := hfNode(b)
	docs := realDocs(b, 1500)
	total := 0
	for _, d := range docs {
		total += len(d)
	}
	dir := b.TempDir()
	textsPath := filepath.Join(dir, "texts.json")
	data, err := json.Marshal(docs)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(textsPath, data, 0o644); err != nil {
		b.Fatal(err)
	}
	paths := map[string]string{}
	names := append([]string(nil), hfModels...)
	for _, m := range hfModels {
		paths[m] = hfPath(m)
	}
	// A Unigram tokenizer.json made from uni4k.model, laid out as the
	// library's SentencePiece conversion lays one out.
	names = append(names, "unigram")
	paths["unigram"] = unigramJSON(b, dir, "unigram", "null", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, false)
	// The same with uni4k's nmt_nfkc charsmap as a Precompiled normalizer,
	// as the library's SentencePiece converter lays it out.
	names = append(names, "precompiled")
	paths["precompiled"] = unigramJSON(b, dir, "precompiled", `{"type":"Sequence","normalizers":[{"type":"Precompiled","precompiled_charsmap":"`+charsmapB64(b)+
		`"},{"type":"Strip","strip_left":false,"strip_right":true},{"type":"Replace","pattern":{"Regex":" {2,}"},"content":"▁"}]}`,
		`{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, false)
	// A BERT-uncased WordPiece tokenizer.json with a vocabulary from every
	// third document.
	names = append(names, "wordpiece")
	var wpDocs []string
	for i := 0; i < len(docs); i += 3 {
		wpDocs = append(wpDocs, docs[i])
	}
	paths["wordpiece"] = wordPieceJSON(b, dir, "wordpiece", wpDocs, true, "##",
		`{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}`, `{"type":"BertPreTokenizer"}`, 100)
	for _, m := range names {
		b.Run(m, func(b *testing.B) {
			runtime.GC()
			c0 := procCPU()
			tok, err := Load(paths[m])
			if err != nil {
				b.Fatal(err)
			}
			loadCPU := procCPU() - c0
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]uint32, 0, 1<<16)
			for _, d := range docs { // warm up, as the reference does
				buf = tok.AppendEncodeOrdinary(buf[:0], d)
			}
			var ours time.Duration
			rounds := 0
			for b.Loop() {
				c := threadCPU()
				for _, d := range docs {
					buf = tok.AppendEncodeOrdinary(buf[:0], d)
				}
				ours += threadCPU() - c
				rounds++
			}
			cmd := exec.Command(node, filepath.Join(hfDir, "ref.js"), "bench", paths[m], textsPath, "1")
			cmd.Env = append(os.Environ(), "RAYON_NUM_THREADS=1", "TOKENIZERS_PARALLELISM=false")
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("reference: %v", err)
			}
			var ref struct {
				Load   float64 `json:"load_cpu_s"`
				Encode float64 `json:"encode_cpu_s"`
			}
			if err := json.Unmarshal(out, &ref); err != nil {
				b.Fatalf("reference printed %q: %v", out, err)
			}
			mb := float64(total) / 1e6
			oursPer := ours.Seconds() / float64(rounds)
			b.ReportMetric(mb/oursPer, "smelt-MB/cpu-s")
			b.ReportMetric(mb/ref.Encode, "hf-MB/cpu-s")
			b.ReportMetric(ref.Encode/oursPer, "x-encode")
			b.ReportMetric(loadCPU.Seconds(), "smelt-load-cpu-s")
			b.ReportMetric(ref.Load, "hf-load-cpu-s")
		})
	}
}
