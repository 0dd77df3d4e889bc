// node jsonl.mjs GLOB: a JSONL export (.jsonl.zst or .jsonl.gz, blocks of
// concatenated zstd frames or gzip members) read with DuckDB's read_json:
// per file, its documents, the characters of their text and the ids' span.
const { DuckDBInstance } = await import("@duckdb/node-api");
const db = await DuckDBInstance.create(":memory:", { threads: "1" });
const conn = await db.connect();
const glob = process.argv[2].replaceAll("'", "''");
const res = await conn.runAndReadAll(
  `SELECT filename, count(*) AS docs, sum(length(text))::BIGINT AS chars, min(id) AS min_id, max(id) AS max_id
   FROM read_json('${glob}', format = 'newline_delimited', filename = true) GROUP BY filename ORDER BY filename`);
for (const r of res.getRowObjects()) {
  console.log(JSON.stringify({ file: r.filename, docs: Number(r.docs), chars: Number(r.chars), min_id: r.min_id, max_id: r.max_id }));
}
