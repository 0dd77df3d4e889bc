#!/usr/bin/python3
"""Compare smelt's quality classifier with scikit-learn on identical features.

Usage:
    smelt classifier train --positive ... --negative ... --out q.model --export DIR
    /usr/bin/python3 filter/bench/sklearn_compare.py DIR

DIR holds train.svm / test.svm (the hashed features smelt trained on, libsvm
format, 1-based bucket indices), go_scores.txt (smelt's held-out scores, in
test.svm order) and info.json (C, bits, class balancing). This script fits
sklearn's LogisticRegression (lbfgs, same C, class_weight="balanced" when
smelt balanced, intercept unpenalised as in smelt) on train.svm, scores
test.svm, and prints both held-out ROC AUCs, computed by the same
sklearn.metrics.roc_auc_score, side by side. Exit status 1 if smelt's AUC is
below sklearn's by more than 0.001.

Needs Debian's python3-sklearn (apt-get install python3-sklearn).
"""
import json
import os
import sys
import time

import numpy as np
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    with open(os.path.join(d, "info.json")) as f:
        info = json.load(f)
    n_features = 1 << info["bits"]
    Xtr, ytr = load_svmlight_file(os.path.join(d, "train.svm"), n_features=n_features, zero_based=False)
    Xte, yte = load_svmlight_file(os.path.join(d, "test.svm"), n_features=n_features, zero_based=False)
    go = np.loadtxt(os.path.join(d, "go_scores.txt"), ndmin=1)
    if len(go) != len(yte):
        sys.exit("go_scores.txt has %d scores for %d test rows" % (len(go), len(yte)))
    t0 = time.time()
    clf = LogisticRegression(C=info["c"], solver="lbfgs", max_iter=5000, tol=1e-8,
                             class_weight="balanced" if info["balanced"] else None)
    clf.fit(Xtr, ytr)
    fit_s = time.time() - t0
    sk = clf.predict_proba(Xte)[:, 1]
    rows = []
    for name, s in (("smelt (Go)", go), ("scikit-learn", sk)):
        pred = (s >= 0.5).astype(int)
        rows.append((name, roc_auc_score(yte, s), accuracy_score(yte, pred),
                     precision_score(yte, pred, zero_division=0), recall_score(yte, pred, zero_division=0)))
    print("train rows %d, test rows %d (%d positive), %d buckets, C=%g, balanced=%s"
          % (Xtr.shape[0], Xte.shape[0], int(yte.sum()), n_features, info["c"], info["balanced"]))
    print("%-14s %8s %9s %10s %7s" % ("model", "roc_auc", "accuracy", "precision", "recall"))
    for r in rows:
        print("%-14s %8.4f %9.4f %10.4f %7.4f" % r)
    print("AUC ratio smelt/sklearn: %.4f" % (rows[0][1] / rows[1][1]))
    go_s = info.get("go_train_seconds", float("nan"))
    print("training time: smelt %.2fs (featurising included, %d L-BFGS iterations), sklearn fit %.2fs "
          "(features preloaded, %d iterations), ratio sklearn/smelt %.2f"
          % (go_s, info.get("go_iterations", 0), fit_s, int(np.max(clf.n_iter_)), fit_s / go_s))
    print("max |score difference|: %.2e" % float(np.max(np.abs(go - sk))))
    if rows[0][1] < rows[1][1] - 1e-3:
        sys.exit(1)


if __name__ == "__main__":
    main()
