# The SentencePiece reference for smelt's tests: the library's Python
# binding (Debian python3-sentencepiece). Usage:
#   ref.py ids MODEL IN OUT    IN: one text a line, "b" + base64; OUT: ids a line
#   ref.py bench MODEL IN      prints the CPU seconds to encode every text once
import base64, sys, time
import sentencepiece as spm

mode, model, src = sys.argv[1], sys.argv[2], sys.argv[3]
sp = spm.SentencePieceProcessor(model_file=model)
texts = [base64.b64decode(l[1:]) for l in open(src, "rb").read().split(b"\n") if l]
if mode == "ids":
    with open(sys.argv[4], "w") as out:
        for t in texts:
            out.write(" ".join(map(str, sp.encode(t))) + "\n")
else:
    n = sum(len(t) for t in texts)
    t0 = time.process_time()
    ids = 0
    for t in texts:
        ids += len(sp.encode(t))
    dt = time.process_time() - t0
    print(f"{dt:.6f} {n} {ids}")
