package main

import (
	"strconv"

	"github.com/smelt-dev/smelt/shards"
)

// shardMBUsage is the one description of --shard-mb: every verb that has it
// takes the same float64 size in MiB (fractions allowed), checked before
// any work by checkShardMB.
const shardMBUsage = "target uncompressed shard size in MiB (fractions allowed)"

// mustShardBytes converts a --shard-mb value that checkShardMB has already
// accepted for this verb (it runs before every verb's RunE), so the error
// cannot happen here.
func mustShardBytes(mb float64) int64 {
	n, err := shards.ShardBytes(mb)
	if err != nil {
		panic("--shard-mb was not checked: " + err.Error())
	}
	return n
}

// tokensPerSecond formats a rate for the done lines, "-" when no time was
// measured. On a resumed run the tokens include the ones an earlier run
// wrote, so the rate is of the whole output over this run's time.
func tokensPerSecond(tokens int64, secs float64) string {
	if secs <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(tokens)/secs, 'f', 0, 64)
}
