// read.mjs opens smelt shards with apache-arrow (JavaScript), an Arrow
// implementation independent of the Go one that wrote them, and prints one
// JSON line per file: schema, metadata, row and batch counts and every
// column's values. shards/interop_test.go compares this with what Go wrote.
//
// usage: node read.mjs FILE.arrow...
import { readFileSync } from 'node:fs';
import { RecordBatchReader, Table, compressionRegistry, CompressionType } from 'apache-arrow';
import { decompress } from 'fzstd';

// Arrow JS ships no zstd codec: register fzstd's decoder for ZSTD buffers.
compressionRegistry.set(CompressionType.ZSTD, {
  encode: null,
  // fzstd may return a view at any byte offset of a larger buffer, and
  // Arrow JS builds typed arrays (Float64Array...) on the result without
  // copying, which needs an offset aligned to the element size: copy
  // such views to a fresh buffer.
  decode: (data) => {
    const out = decompress(data);
    return out.byteOffset % 8 === 0 ? out : out.slice();
  },
});

function plain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'object' && typeof v.toArray === 'function') {
    return Array.from(v.toArray(), plain);
  }
  return v;
}

for (const file of process.argv.slice(2)) {
  const reader = RecordBatchReader.from(readFileSync(file));
  if (!reader.isFile()) throw new Error(`${file}: not an Arrow IPC file (stream format?)`);
  const batches = [...reader];
  const table = new Table(reader.schema, batches);
  const out = {
    file,
    rows: table.numRows,
    batches: batches.length,
    fields: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    metadata: Object.fromEntries(table.schema.metadata),
    columns: {},
  };
  for (const f of table.schema.fields) {
    const col = table.getChild(f.name);
    const vals = new Array(table.numRows);
    for (let i = 0; i < table.numRows; i++) vals[i] = plain(col.get(i));
    out.columns[f.name] = vals;
  }
  console.log(JSON.stringify(out));
}
