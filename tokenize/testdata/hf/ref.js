// The reference for smelt's tokenize tests: Hugging Face tokenizers (the
// Rust library through its official Node binding).
//
//   node ref.js ids TOKENIZER.json TEXTS.json OUT.json
//     encodes each string of the JSON array TEXTS (no special tokens added)
//     and writes the JSON array of id arrays to OUT.
//   node ref.js save TOKENIZER.json OUT.json
//     loads the file and writes it back (numbers as the library holds them).
//   node ref.js bench TOKENIZER.json TEXTS.json ROUNDS
//     prints {"load_cpu_s":..., "encode_cpu_s":..., "bytes":...}: the CPU
//     seconds of loading the file and of encoding every text ROUNDS times,
//     one text at a time.
'use strict';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

async function main() {
  const [mode, tokPath, textsPath, arg] = process.argv.slice(2);
  if (mode === 'save') { // node ref.js save TOKENIZER.json OUT.json: the file as the library writes it back
    Tokenizer.fromFile(tokPath).save(textsPath);
    return;
  }
  const texts = JSON.parse(fs.readFileSync(textsPath, 'utf8'));
  const c0 = cpu();
  const tok = Tokenizer.fromFile(tokPath);
  const loadCPU = cpu() - c0;
  if (mode === 'ids') {
    const out = [];
    for (const t of texts) {
      const enc = await tok.encode(t, null, { addSpecialTokens: false });
      out.push(enc.getIds());
    }
    fs.writeFileSync(arg, JSON.stringify(out));
    return;
  }
  const rounds = Number(arg || 1);
  let bytes = 0;
  for (const t of texts) bytes += Buffer.byteLength(t, 'utf8');
  // Warm up once (the BPE cache is per tokenizer, as in a long run).
  for (const t of texts) await tok.encode(t, null, { addSpecialTokens: false });
  const c1 = cpu();
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (const t of texts) n += (await tok.encode(t, null, { addSpecialTokens: false })).getIds().length;
  }
  const encCPU = cpu() - c1;
  console.log(JSON.stringify({ load_cpu_s: loadCPU, encode_cpu_s: encCPU, bytes: bytes * rounds, tokens: n }));
}
main().catch((e) => { console.error(e); process.exit(1); });
