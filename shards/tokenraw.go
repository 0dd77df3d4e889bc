package shards

import (
	"encoding/binary"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"
)

// This file reads uncompressed token shards (the default since
// 2026-12-05) without Arrow Go's IPC reader. Through ipc.FileReader every
// record batch's body is allocated (zeroed by Go), copied out of the file
// buffer, and then copied again into the shard's flat token slice: in
// BenchmarkLoader the loader read uncompressed shards at 103-137 million
// tokens per CPU-second against 136-171 for zstd ones, zeroing and copying
// being half its time. Here the ids go from the file buffer into the flat
// slice in one pass. Only the layout smelt's writer produces is taken (the
// four token-shard columns, no nulls, no compression, no dictionaries);
// anything else, and anything that does not check out, goes to the Arrow
// reader, whose answer (rows or an error) stands.

// rawTokenBatch is one record batch's columns, as slices of the file.
type rawTokenBatch struct {
	rows             int
	idOffs, idData   []byte
	srcOffs, srcData []byte
	listOffs, vals   []byte
	valCount         int
}

// decodeRawTokenShard decodes data, an uncompressed token shard, into ts
// (whose slices it appends to). It reports false, having appended nothing
// it keeps, where the file is not one it handles or does not check out.
func decodeRawTokenShard(data []byte, ts *TokenShard, wide *bool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	n := len(data)
	if n < 18 || string(data[:6]) != "ARROW1" || string(data[n-6:]) != "ARROW1" {
		return false
	}
	flen := int(int32(binary.LittleEndian.Uint32(data[n-10:])))
	if flen <= 0 || flen > n-18 {
		return false
	}
	footer := fbRoot(data[n-10-flen : n-10])
	schema, ok := footer.table(1)
	if !ok {
		return false
	}
	fstart, nf := schema.vec(1, 4)
	if nf != 4 {
		return false
	}
	// id, source: utf8; tokens: list<uint16|uint32>; n_tokens: int64.
	for j, name := range []string{ColID, ColSource, ColTokens, ColNTokens} {
		f := schema.tableAt(fstart, j)
		if f.str(0) != name {
			return false
		}
		if _, dict := f.table(4); dict {
			return false
		}
		kind := f.t.GetByteSlot(8, 0)
		_, nc := f.vec(5, 4)
		switch j {
		case 0, 1:
			if kind != fbTypeUtf8 || nc != 0 {
				return false
			}
		case 2:
			cs, nc := f.vec(5, 4)
			if kind != fbTypeList || nc != 1 {
				return false
			}
			c := f.tableAt(cs, 0)
			typ, ok := c.table(3)
			if !ok || c.t.GetByteSlot(8, 0) != fbTypeInt || typ.t.GetBoolSlot(6, false) {
				return false
			}
			if _, nc := c.vec(5, 4); nc != 0 {
				return false
			}
			switch typ.t.GetInt32Slot(4, 0) {
			case 16:
				*wide = false
			case 32:
				*wide = true
			default:
				return false
			}
		case 3:
			typ, ok := f.table(3)
			if !ok || kind != fbTypeInt || nc != 0 || typ.t.GetInt32Slot(4, 0) != 64 {
				return false
			}
		}
	}
	bstart, nb := footer.vec(3, 24)
	if nb < 0 {
		return false
	}
	width := 2
	if *wide {
		width = 4
	}
	var batches []rawTokenBatch
	total, rowsTotal := 0, 0
	for j := 0; j < nb; j++ {
		x := bstart + flatbuffers.UOffsetT(24*j)
		off, metaLen, bodyLen := footer.i64(x), int64(footer.t.GetInt32(x+8)), footer.i64(x+16)
		if off < 8 || metaLen < 8 || bodyLen < 0 || off+metaLen+bodyLen > int64(n) {
			return false
		}
		b, ok := rawBatch(data[off:off+metaLen], data[off+metaLen:off+metaLen+bodyLen], width)
		if !ok {
			return false
		}
		batches = append(batches, b)
		total += b.valCount
		rowsTotal += b.rows
	}
	// Every count is bounded by the file's own bytes by now.
	if cap(ts.ids)-len(ts.ids) < rowsTotal {
		ts.ids = make([]string, 0, rowsTotal)
		ts.src = make([]string, 0, rowsTotal)
		ts.offs = append(make([]int64, 0, rowsTotal+1), ts.offs...)
	}
	if *wide && cap(ts.u32) < total {
		ts.u32 = make([]uint32, 0, total)
	} else if !*wide && cap(ts.u16) < total {
		ts.u16 = make([]uint16, 0, total)
	}
	for _, b := range batches {
		for i := 0; i < b.rows; i++ {
			ts.ids = append(ts.ids, rawString(b.idOffs, b.idData, i))
			ts.src = append(ts.src, rawString(b.srcOffs, b.srcData, i))
		}
		lo := int(int32(binary.LittleEndian.Uint32(b.listOffs)))
		prev := lo
		for i := 1; i <= b.rows; i++ {
			o := int(int32(binary.LittleEndian.Uint32(b.listOffs[4*i:])))
			ts.offs = append(ts.offs, ts.offs[len(ts.offs)-1]+int64(o-prev))
			prev = o
		}
		v := b.vals[width*lo : width*prev]
		if *wide {
			for k := 0; k+4 <= len(v); k += 4 {
				ts.u32 = append(ts.u32, binary.LittleEndian.Uint32(v[k:]))
			}
		} else {
			for k := 0; k+2 <= len(v); k += 2 {
				ts.u16 = append(ts.u16, binary.LittleEndian.Uint16(v[k:]))
			}
		}
	}
	return true
}

// rawBatch checks one uncompressed record batch's metadata against its
// body and returns its buffers.
func rawBatch(meta, body []byte, width int) (rawTokenBatch, bool) {
	var b rawTokenBatch
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[8:]
	} else {
		meta = meta[4:]
	}
	msg := fbRoot(meta)
	if msg.t.GetByteSlot(6, 0) != fbHeaderRecordBatch {
		return b, false
	}
	rb, ok := msg.table(2)
	if !ok {
		return b, false
	}
	if _, comp := rb.table(3); comp {
		return b, false // compressed: the Arrow reader's
	}
	rows := rb.t.GetInt64Slot(4, 0)
	nstart, nn := rb.vec(1, 16)
	bstart, nbuf := rb.vec(2, 16)
	if rows < 0 || rows > int64(len(body)) || nn != 5 || nbuf != 12 {
		return b, false
	}
	var nodes [5]int64
	for k := range nodes {
		x := nstart + flatbuffers.UOffsetT(16*k)
		nodes[k] = rb.i64(x)
		if rb.i64(x+8) != 0 {
			return b, false // nulls
		}
	}
	if nodes[0] != rows || nodes[1] != rows || nodes[2] != rows || nodes[4] != rows || nodes[3] < 0 {
		return b, false
	}
	var bufs [12][]byte
	for k := range bufs {
		x := bstart + flatbuffers.UOffsetT(16*k)
		off, ln := rb.i64(x), rb.i64(x+8)
		if off < 0 || ln < 0 || off+ln > int64(len(body)) {
			return b, false
		}
		bufs[k] = body[off : off+ln]
	}
	// Buffers: id (validity, offsets, data), source (same), tokens
	// (validity, offsets), items (validity, values), n_tokens (validity,
	// values).
	b = rawTokenBatch{rows: int(rows), idOffs: bufs[1], idData: bufs[2], srcOffs: bufs[4], srcData: bufs[5],
		listOffs: bufs[7], vals: bufs[9], valCount: int(nodes[3])}
	need := 4 * (rows + 1)
	if int64(len(b.idOffs)) < need || int64(len(b.srcOffs)) < need || int64(len(b.listOffs)) < need ||
		int64(len(b.vals)) < nodes[3]*int64(width) {
		return b, false
	}
	for _, c := range [][2][]byte{{b.idOffs, b.idData}, {b.srcOffs, b.srcData}} {
		if !rawOffsetsOK(c[0], int(rows), len(c[1])) {
			return b, false
		}
	}
	if !rawOffsetsOK(b.listOffs, int(rows), int(nodes[3])) {
		return b, false
	}
	return b, true
}

// rawOffsetsOK checks that rows+1 int32 offsets never decrease and stay
// within limit.
func rawOffsetsOK(offs []byte, rows, limit int) bool {
	prev := int32(binary.LittleEndian.Uint32(offs))
	if prev < 0 {
		return false
	}
	for i := 1; i <= rows; i++ {
		o := int32(binary.LittleEndian.Uint32(offs[4*i:]))
		if o < prev {
			return false
		}
		prev = o
	}
	return int(prev) <= limit
}

// rawString is row i of a utf8 column whose offsets rawOffsetsOK checked.
// It points into the file buffer (decodeTokenShard copies the strings into
// one block afterwards, as it does the Arrow reader's).
func rawString(offs, data []byte, i int) string {
	lo := binary.LittleEndian.Uint32(offs[4*i:])
	hi := binary.LittleEndian.Uint32(offs[4*i+4:])
	if hi == lo {
		return ""
	}
	return unsafe.String(&data[lo], int(hi-lo))
}
