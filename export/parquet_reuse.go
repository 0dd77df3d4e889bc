package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/apache/arrow/go/v17/parquet/metadata"
)

// docReuse is an earlier documents Parquet file's page groups, by the
// PLAIN bytes of their id pages: a new page group whose ids are the same
// (the same documents in the same order) has the same bytes in every
// column, so they are copied.
type docReuse struct {
	groups map[string][docColumns]reusedPage
}

// reusedPage is one column's page of an earlier file: header and data as
// written, and its size uncompressed with the header.
type reusedPage struct {
	b      []byte
	uncomp int64
}

// find returns the earlier pages of the group whose id column's PLAIN
// values are ids, or nil.
func (r *docReuse) find(ids []byte) *[docColumns]reusedPage {
	if r == nil {
		return nil
	}
	g, ok := r.groups[string(ids)]
	if !ok {
		return nil
	}
	return &g
}

// loadDocReuse reads an earlier documents Parquet file whole and indexes
// its page groups. It checks everything it will copy: the file's size and
// sha256 against the earlier export's record (so no damaged byte is ever
// copied), the page layout named in its footer (a file of another layout,
// e.g. one pqarrow wrote, is not reused), that every column has the same
// pages of the same rows, and that each id page decodes to exactly its
// rows' ids. Any failure is an error, and the caller encodes everything.
// Memory: the earlier file, about the size of the new one.
func loadDocReuse(path string, fi FileInfo, pc *pageCodec) (r *docReuse, err error) {
	defer func() {
		// Arrow's Thrift decoder on a hostile footer.
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%s: bad footer: %v", path, p)
		}
	}()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() != fi.Bytes {
		return nil, fmt.Errorf("%s: %d bytes, the earlier export recorded %d", path, st.Size(), fi.Bytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != fi.SHA256 {
		return nil, fmt.Errorf("%s: sha256 differs from the earlier export's record", path)
	}
	n := len(data)
	if n < 12 || !bytes.Equal(data[:4], parquetMagic) || !bytes.Equal(data[n-4:], parquetMagic) {
		return nil, fmt.Errorf("%s: not a Parquet file", path)
	}
	flen := int(binary.LittleEndian.Uint32(data[n-8:]))
	if flen > n-12 {
		return nil, fmt.Errorf("%s: footer of %d bytes in a file of %d", path, flen, n)
	}
	fmd, err := metadata.NewFileMetaData(data[n-8-flen:n-8], nil)
	if err != nil {
		return nil, fmt.Errorf("%s: footer: %w", path, err)
	}
	if v := fmd.KeyValueMetadata().FindValue(docPagesKey); v == nil || *v != docPagesValue() {
		return nil, fmt.Errorf("%s: pages not laid out as this writer lays them out", path)
	}
	if fmd.Schema.NumColumns() != docColumns {
		return nil, fmt.Errorf("%s: %d columns", path, fmd.Schema.NumColumns())
	}
	r = &docReuse{groups: map[string][docColumns]reusedPage{}}
	var buf []byte
	end := int64(n - 8 - flen)
	for g := 0; g < len(fmd.RowGroups); g++ {
		rg := fmd.RowGroup(g)
		var cols [docColumns][]reusedPage
		var rows [docColumns][]int32
		var idData [][]byte
		for c := 0; c < docColumns; c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return nil, fmt.Errorf("%s: row group %d: %w", path, g, err)
			}
			if cc.Compression() != pc.kind {
				return nil, fmt.Errorf("%s: codec %v", path, cc.Compression())
			}
			off, size := cc.DataPageOffset(), cc.TotalCompressedSize()
			if off < 4 || size < 0 || off+size > end {
				return nil, fmt.Errorf("%s: row group %d column %d out of the file", path, g, c)
			}
			chunk := data[off : off+size]
			for len(chunk) > 0 {
				h, u, z, crc, nv, err := parsePageHeader(chunk)
				if err != nil || int64(h)+int64(z) > int64(len(chunk)) {
					return nil, fmt.Errorf("%s: row group %d column %d: bad page header", path, g, c)
				}
				if crc32.ChecksumIEEE(chunk[h:h+int(z)]) != crc {
					return nil, fmt.Errorf("%s: row group %d column %d: page CRC differs", path, g, c)
				}
				cols[c] = append(cols[c], reusedPage{b: chunk[:h+int(z)], uncomp: int64(h) + int64(u)})
				rows[c] = append(rows[c], nv)
				if c == 0 {
					buf, err = pc.decompress(buf, chunk[h:h+int(z)], int(u))
					if err != nil {
						return nil, fmt.Errorf("%s: row group %d: id page: %w", path, g, err)
					}
					if !plainStrings(buf, int(nv)) {
						return nil, fmt.Errorf("%s: row group %d: id page does not hold %d ids", path, g, nv)
					}
					idData = append(idData, bytes.Clone(buf))
				}
				chunk = chunk[h+int(z):]
			}
			if len(rows[c]) != len(rows[0]) {
				return nil, fmt.Errorf("%s: row group %d: columns of different pages", path, g)
			}
			for i, nv := range rows[c] {
				if nv != rows[0][i] {
					return nil, fmt.Errorf("%s: row group %d: columns of different pages", path, g)
				}
			}
		}
		for i, ids := range idData {
			var pages [docColumns]reusedPage
			for c := range pages {
				pages[c] = cols[c][i]
			}
			r.groups[string(ids)] = pages
		}
	}
	return r, nil
}

// plainStrings reports whether b is exactly n PLAIN byte arrays.
func plainStrings(b []byte, n int) bool {
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return false
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return false
		}
		b = b[4+l:]
	}
	return len(b) == 0
}
