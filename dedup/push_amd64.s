#include "textflag.h"

// func pushBlocks8(sig, a, b *uint64, blocks int, xs *uint64, n int)
//
// For each block of 8 permutations: Z1 = a, Z2 = b, Z3 = sig; for each
// shingle x: Z3 = min(Z3, Z1*x + Z2) (unsigned, mod 2^64); store Z3.
TEXT ·pushBlocks8(SB), NOSPLIT, $0-48
	MOVQ sig+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ blocks+24(FP), CX
	MOVQ xs+32(FP), R8
	MOVQ n+40(FP), R9

block:
	TESTQ CX, CX
	JZ    done
	VMOVDQU64 (SI), Z1
	VMOVDQU64 (DX), Z2
	VMOVDQU64 (DI), Z3
	MOVQ      R8, R10
	MOVQ      R9, R11

	// Two shingles per iteration, two running minimums.
	VMOVDQA64 Z3, Z5
	CMPQ      R11, $2
	JLT       tail

pair:
	VPBROADCASTQ (R10), Z0
	VPBROADCASTQ 8(R10), Z6
	VPMULLQ      Z0, Z1, Z4
	VPMULLQ      Z6, Z1, Z7
	VPADDQ       Z2, Z4, Z4
	VPADDQ       Z2, Z7, Z7
	VPMINUQ      Z4, Z3, Z3
	VPMINUQ      Z7, Z5, Z5
	ADDQ         $16, R10
	SUBQ         $2, R11
	CMPQ         R11, $2
	JGE          pair

tail:
	TESTQ        R11, R11
	JZ           store
	VPBROADCASTQ (R10), Z0
	VPMULLQ      Z0, Z1, Z4
	VPADDQ       Z2, Z4, Z4
	VPMINUQ      Z4, Z3, Z3

store:
	VPMINUQ   Z5, Z3, Z3
	VMOVDQU64 Z3, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, DI
	DECQ      CX
	JMP       block

done:
	VZEROUPPER
	RET
