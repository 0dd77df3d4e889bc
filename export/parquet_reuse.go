package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/apache/arrow/go/v17/parquet/metadata"
)

// pageReuse is an earlier Parquet file's page groups (documents, or
// token rows), by the PLAIN bytes of their id pages: a new page group
// whose ids are the same (the same documents in the same order) has the
// same bytes in every column, so they are copied.
type pageReuse struct {
	groups map[string][]reusedPage // a page per column
}

// reusedPage is one column's page of an earlier file: header and data as
// written, and its size uncompressed with the header.
type reusedPage struct {
	b      []byte
	uncomp int64
}

// find returns the earlier pages of the group whose id column's PLAIN
// values are ids, or nil.
func (r *pageReuse) find(ids []byte) []reusedPage {
	if r == nil {
		return nil
	}
	return r.groups[string(ids)]
}

// pageLayout is what loadPageReuse expects of an earlier file.
type pageLayout struct {
	pages string // the footer's smelt.pages value
	ncols int
	list  int    // the list column, whose chunks start with dict (-1: none)
	dict  []byte // that dictionary page, header and data
}

// loadPageReuse reads an earlier Parquet file written with content-defined
// page groups whole and indexes its groups. It checks everything it will
// copy: the file's size and sha256 against the earlier export's record
// (so no damaged byte is ever copied), the page layout named in its footer
// (a file of another layout, e.g. one pqarrow wrote, is not reused), that
// every column has the same number of pages (and, but for a list column,
// of the same rows), every page's CRC-32, a list column's dictionary page
// (the same bytes as the new file's), and that each id page decodes to
// exactly its rows' ids. Any failure is an error, and the caller encodes
// everything. Memory: the earlier file, about the size of the new one.
func loadPageReuse(path string, fi FileInfo, pc *pageCodec, lay pageLayout) (*pageReuse, error) {
	groups, err := readPageGroups(path, fi, pc, lay)
	if err != nil {
		return nil, err
	}
	r := &pageReuse{groups: map[string][]reusedPage{}}
	for _, g := range groups {
		r.groups[string(g.ids)] = g.pages
	}
	return r, nil
}

// pageGroup is one page group of an earlier file: its pages (one per
// column), its id page's PLAIN values, and its rows.
type pageGroup struct {
	pages []reusedPage
	ids   []byte
	rows  int
}

// readPageGroups reads and checks an earlier file as loadPageReuse
// describes, and returns its page groups in file order.
func readPageGroups(path string, fi FileInfo, pc *pageCodec, lay pageLayout) (groups []pageGroup, err error) {
	defer func() {
		// Arrow's Thrift decoder on a hostile footer.
		if p := recover(); p != nil {
			groups, err = nil, fmt.Errorf("%s: bad footer: %v", path, p)
		}
	}()
	data, err := readVerified(path, fi)
	if err != nil {
		return nil, err
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
	if v := fmd.KeyValueMetadata().FindValue(docPagesKey); v == nil || *v != lay.pages {
		return nil, fmt.Errorf("%s: pages not laid out as this writer lays them out", path)
	}
	if fmd.Schema.NumColumns() != lay.ncols {
		return nil, fmt.Errorf("%s: %d columns", path, fmd.Schema.NumColumns())
	}
	var buf []byte
	end := int64(n - 8 - flen)
	for g := 0; g < len(fmd.RowGroups); g++ {
		rg := fmd.RowGroup(g)
		cols := make([][]reusedPage, lay.ncols)
		rows := make([][]int32, lay.ncols)
		var idData [][]byte
		for c := 0; c < lay.ncols; c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return nil, fmt.Errorf("%s: row group %d: %w", path, g, err)
			}
			if cc.Compression() != pc.kind {
				return nil, fmt.Errorf("%s: codec %v", path, cc.Compression())
			}
			off, size := cc.DataPageOffset(), cc.TotalCompressedSize()
			if c == lay.list {
				off = cc.DictionaryPageOffset()
			}
			if off < 4 || size < 0 || off+size > end {
				return nil, fmt.Errorf("%s: row group %d column %d out of the file", path, g, c)
			}
			chunk := data[off : off+size]
			if c == lay.list {
				if !bytes.HasPrefix(chunk, lay.dict) {
					return nil, fmt.Errorf("%s: row group %d column %d: not the dictionary page", path, g, c)
				}
				chunk = chunk[len(lay.dict):]
			}
			for len(chunk) > 0 {
				h, err := parsePageHeader(chunk)
				if err != nil || h.dict || int64(h.n)+int64(h.compressed) > int64(len(chunk)) {
					return nil, fmt.Errorf("%s: row group %d column %d: bad page header", path, g, c)
				}
				page := chunk[h.n : h.n+int(h.compressed)]
				if crc32.ChecksumIEEE(page) != h.crc {
					return nil, fmt.Errorf("%s: row group %d column %d: page CRC differs", path, g, c)
				}
				cols[c] = append(cols[c], reusedPage{b: chunk[:h.n+int(h.compressed)], uncomp: int64(h.n) + int64(h.uncompressed)})
				rows[c] = append(rows[c], h.nvals)
				if c == 0 {
					buf, err = pc.decompress(buf, page, int(h.uncompressed))
					if err != nil {
						return nil, fmt.Errorf("%s: row group %d: id page: %w", path, g, err)
					}
					if !plainStrings(buf, int(h.nvals)) {
						return nil, fmt.Errorf("%s: row group %d: id page does not hold %d ids", path, g, h.nvals)
					}
					idData = append(idData, bytes.Clone(buf))
				}
				chunk = chunk[h.n+int(h.compressed):]
			}
			if len(rows[c]) != len(rows[0]) {
				return nil, fmt.Errorf("%s: row group %d: columns of different pages", path, g)
			}
			for i, nv := range rows[c] {
				if c != lay.list && nv != rows[0][i] {
					return nil, fmt.Errorf("%s: row group %d: columns of different pages", path, g)
				}
			}
		}
		for i, ids := range idData {
			pages := make([]reusedPage, lay.ncols)
			for c := range pages {
				pages[c] = cols[c][i]
			}
			groups = append(groups, pageGroup{pages: pages, ids: ids, rows: int(rows[0][i])})
		}
	}
	return groups, nil
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
