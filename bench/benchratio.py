#!/usr/bin/env python3
"""Summarise repeated `go test -bench` invocations (features work).

Usage: features-benchratio.py run1.txt run2.txt ...  (one file per invocation)
Prints, per benchmark, the median ns/op over invocations and the median of the
per-invocation ratios against the store=map_rwmutex row of the same benchmark group.
"""
import re, statistics, sys
from collections import defaultdict

rows = defaultdict(list)      # name -> [ns]
ratios = defaultdict(list)    # name -> [ns / baseline ns in the same invocation]
line = re.compile(r'^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op')
for path in sys.argv[1:]:
    ns = {}
    for l in open(path):
        m = line.match(l)
        if m:
            ns[m.group(1)] = float(m.group(2))
    for name, v in ns.items():
        rows[name].append(v)
        base = re.sub(r'store=[^/]+', 'store=map_rwmutex', name)
        if base in ns:
            ratios[name].append(v / ns[base])
print(f"{'benchmark':60} {'n':>2} {'median ns/op':>14} {'min':>10} {'max':>10} {'x map (median)':>15}")
for name in rows:
    v = rows[name]
    r = ratios.get(name)
    rs = f"{statistics.median(r):.2f}" if r else "-"
    print(f"{name:60} {len(v):>2} {statistics.median(v):>14.0f} {min(v):>10.0f} {max(v):>10.0f} {rs:>15}")
