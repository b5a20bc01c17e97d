"""Speed and memory of the hybrid classifier beside the naive scikit-learn pipeline,
both measured in this run on this machine.

    python benchmarks/speed.py [--n 2000]

Prints single-call latency p50/p99 on ~300-character replies, batch throughput on
one core, cold start (fresh process: import to first verdict), peak RSS and model
size, each as a ratio to the naive pipeline, and the issue's targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, naive_pipeline, records

HERE = Path(__file__).resolve().parent


def texts_of_length(recs, n: int, length: int = 300) -> list[str]:
    """Replies of about ``length`` characters: real ones, extended or cut at a word boundary."""
    base = [r.text for r in recs]
    out = []
    i = 0
    while len(out) < n:
        t = base[i % len(base)]
        while len(t) < length:
            t = t + " " + base[(i * 7 + len(t)) % len(base)]
        cut = t.rfind(" ", 0, length)
        out.append(t[: cut if cut > length // 2 else length])
        i += 1
    return out


def latencies(fn, texts) -> np.ndarray:
    for t in texts[:50]:
        fn(t)
    out = np.empty(len(texts))
    for k, t in enumerate(texts):
        t0 = time.perf_counter_ns()
        fn(t)
        out[k] = time.perf_counter_ns() - t0
    return out / 1000.0  # microseconds


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
kind, model, data = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "hybrid":
    from replyguard import classify_reply
    classify = lambda t: classify_reply(t)
    batch = None
else:
    import joblib
    pipe = joblib.load(model)
    classify = lambda t: pipe.predict_proba([t])
first = classify("Please take me off your list.")
cold = time.perf_counter() - t0
texts = json.load(open(data, encoding="utf-8"))
for t in texts:
    classify(t)
rss = None
try:  # VmHWM: this process's own peak (ru_maxrss would carry the parent's across fork+exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024.0
except OSError:
    pass
if rss is None:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"cold_start_s": cold, "peak_rss_mb": rss}))
"""


def child(kind: str, model: str, data: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    out = subprocess.run([sys.executable, "-c", CHILD, kind, model, data], capture_output=True, text=True,
                         env=env, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="replies for the latency and batch runs")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    with contextlib.suppress(AttributeError, OSError):  # one core, as the targets are per core
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from replyguard import ReplyClassifier, classify_replies
    from replyguard.classify import default_model_path

    train, test = records("train"), records("test")
    texts = texts_of_length(test, args.n)
    print(f"{len(texts)} replies of ~{int(np.mean([len(t) for t in texts]))} characters; one core")
    naive = naive_pipeline().fit([r.text for r in train], [r.intent for r in train])
    clf = ReplyClassifier.default()

    lat_h = latencies(clf.classify, texts)
    lat_n = latencies(lambda t: naive.predict_proba([t]), texts)

    t0 = time.perf_counter()
    classify_replies(texts)
    thr_h = len(texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    naive.predict_proba(texts)
    thr_n = len(texts) / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        import joblib

        npath = Path(tmp) / "naive.joblib"
        joblib.dump(naive, npath)
        data = Path(tmp) / "texts.json"
        data.write_text(json.dumps(texts[:1000]), encoding="utf-8")
        ch = child("hybrid", "", str(data))
        cn = child("naive", str(npath), str(data))
        size_h = dir_size(default_model_path())
        size_n = npath.stat().st_size

    p50h, p99h = np.percentile(lat_h, [50, 99])
    p50n, p99n = np.percentile(lat_n, [50, 99])
    rows = [
        ("single call p50 (us)", p50h, p50n, p50n / p50h, "x faster"),
        ("single call p99 (us)", p99h, p99n, p99n / p99h, "x faster"),
        ("batch throughput (replies/s)", thr_h, thr_n, thr_h / thr_n, "x the naive"),
        ("cold start (s)", ch["cold_start_s"], cn["cold_start_s"], cn["cold_start_s"] / ch["cold_start_s"], "x faster"),
        ("peak RSS (MB)", ch["peak_rss_mb"], cn["peak_rss_mb"], cn["peak_rss_mb"] / ch["peak_rss_mb"], "x smaller"),
        ("model files (MB)", size_h / 1e6, size_n / 1e6, size_n / size_h, "x smaller"),
    ]
    print(f"{'measure':30s} {'hybrid':>10s} {'naive':>10s} {'ratio':>8s}")
    for name, h, n, r, unit in rows:
        print(f"{name:30s} {h:10.2f} {n:10.2f} {r:7.2f}  {unit}")
    targets = [
        ("single call >= 15x faster than naive", p50n / p50h >= 15),
        ("batch >= 4x naive throughput", thr_h / thr_n >= 4),
        ("cold start <= 1.5 s", ch["cold_start_s"] <= 1.5),
        ("peak RSS <= 250 MB", ch["peak_rss_mb"] <= 250),
        ("model files <= 10 MB", size_h <= 10e6),
    ]
    print("\ntargets:")
    for name, ok in targets:
        print(f"  [{'met' if ok else 'NOT MET'}] {name}")
    if args.json:
        Path(args.json).write_text(json.dumps({r[0]: [r[1], r[2], r[3]] for r in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
