// read.cjs opens Arrow IPC files with nodejs-polars (Rust's Polars, a third
// Arrow implementation) and prints one JSON line per file: its row count
// and every row as an object. shards/docipc_test.go compares this with
// what Go wrote. The package is the one export/testdata/node installs.
//
// usage: node read.cjs NODE_MODULES_DIR FILE...
const fs = require('node:fs');
const path = require('node:path');

const [modules, ...files] = process.argv.slice(2);
const pl = require(path.join(modules, 'nodejs-polars'));
for (const file of files) {
  // readIPC takes a path string for inline data only without an .ipc
  // extension: hand it the bytes.
  const df = pl.readIPC(fs.readFileSync(file));
  console.log(JSON.stringify({ file, rows: df.height, records: df.toRecords() }));
}
