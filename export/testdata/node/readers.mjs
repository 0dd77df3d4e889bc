// Reads smelt's shards and exports with the tools people use, for
// export/readers_test.go. Each mode prints one JSON object per line.
//
//   node readers.mjs polars FILE...   Arrow IPC (.arrow) or Parquet (.parquet)
//                                     files with nodejs-polars: rows, and for
//                                     token columns the count and sum of ids
//                                     and token_wsum, the sum over documents
//                                     of id x its 1-based position (exact, as
//                                     a decimal string): ids in order
//   node readers.mjs duckdb GLOB      a Parquet export queried with DuckDB:
//                                     documents (and tokens, and their wsum)
//                                     per source
//   node readers.mjs duckdb-write GLOB OUT CODEC
//                                     the peer benchmark: DuckDB on one thread
//                                     loads a Parquet export into memory, then
//                                     writes it as Parquet with CODEC; prints
//                                     the write's CPU seconds (all threads of
//                                     the process), tokens and bytes
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const [mode, ...args] = process.argv.slice(2);

if (mode === "polars") {
  const pl = require("nodejs-polars");
  for (const file of args) {
    // readIPC takes a string without the .ipc extension for inline data,
    // so shards are passed as bytes.
    const df = file.endsWith(".parquet") ? pl.readParquet(file) : pl.readIPC(readFileSync(file));
    const out = { file, rows: df.height, columns: df.columns };
    for (const col of ["tokens", "input_ids"]) {
      if (df.columns.includes(col)) {
        const flat = df.getColumn(col).explode();
        out.token_count = flat.len();
        out.token_sum = flat.cast(pl.Float64).sum();
        out.dtype = df.getColumn(col).dtype.toString();
        let w = 0n;
        for (const ids of df.getColumn(col).toArray()) {
          for (let i = 0; i < ids.length; i++) w += BigInt(ids[i]) * BigInt(i + 1);
        }
        out.token_wsum = w.toString();
      }
    }
    if (df.columns.includes("text")) {
      out.text_bytes = df.getColumn("text").toArray().reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
    }
    console.log(JSON.stringify(out));
  }
} else if (mode === "duckdb") {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  const glob = args[0].replaceAll("'", "''");
  const cols = (await conn.runAndReadAll(`SELECT name FROM parquet_schema('${glob}')`)).getRowObjects().map((r) => r.name);
  const tokens = cols.includes("input_ids")
    ? ", sum(len(input_ids)) AS tokens, sum(list_sum(list_transform(input_ids, lambda x, i: x::BIGINT * i)))::VARCHAR AS wsum"
    : "";
  const res = await conn.runAndReadAll(
    `SELECT source, count(*) AS docs${tokens} FROM read_parquet('${glob}') GROUP BY source ORDER BY source`);
  for (const r of res.getRowObjects()) {
    console.log(JSON.stringify({ source: r.source, docs: Number(r.docs), tokens: r.tokens === undefined ? 0 : Number(r.tokens), wsum: r.wsum ?? "" }));
  }
} else if (mode === "duckdb-write") {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const { statSync } = await import("node:fs");
  const [glob, out, codec] = args;
  const db = await DuckDBInstance.create(":memory:", { threads: "1" });
  const conn = await db.connect();
  await conn.run(`CREATE TABLE t AS SELECT * FROM read_parquet('${glob.replaceAll("'", "''")}')`);
  const n = (await conn.runAndReadAll("SELECT sum(len(input_ids))::BIGINT AS n FROM t")).getRowObjects()[0].n;
  const c0 = process.cpuUsage();
  await conn.run(`COPY t TO '${out.replaceAll("'", "''")}' (FORMAT parquet, COMPRESSION ${codec})`);
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ tokens: Number(n), cpu_s: (c.user + c.system) / 1e6, bytes: statSync(out).size }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
