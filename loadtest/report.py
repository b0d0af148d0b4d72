#!/usr/bin/env python3
"""Turns one loadtest/run.sh results directory into docs/benchmarks.md and
two PNG plots. Every number in the report is computed here from the raw
files of that run (k6 CSV output, ceilings.jsonl, SQL and RSS samples).

    python3 loadtest/report.py loadtest/results/<run> --doc docs/benchmarks.md --img docs/img
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Run:
    """One k6 run: its POST /orders samples and custom metrics."""

    def __init__(self, path: Path):
        self.path = path
        self.posts: list[tuple[float, float, int]] = []  # (t ms, duration ms, status)
        self.confirm: list[float] = []
        self.dropped = 0
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                name = row["metric_name"]
                if name == "http_req_duration":
                    is_order = row.get("name") == "POST /orders" or (
                        row.get("method") == "POST" and row.get("url", "").endswith("/orders"))
                    if is_order and row.get("scenario") == "burst":
                        status = int(row["status"] or 0)
                        self.posts.append((float(row["timestamp"]), float(row["metric_value"]), status))
                elif name == "accept_to_confirmed" and row.get("scenario") == "burst":
                    self.confirm.append(float(row["metric_value"]))
                elif name == "dropped_iterations":
                    self.dropped += int(float(row["metric_value"]))
        self.posts.sort()

    @property
    def window_s(self) -> float:
        if len(self.posts) < 2:
            return float("nan")
        return (self.posts[-1][0] - self.posts[0][0]) / 1000

    def count(self, pred) -> int:
        return sum(1 for p in self.posts if pred(p[2]))

    @property
    def accepted(self) -> int:
        return self.count(lambda s: s == 202)

    @property
    def refused(self) -> int:
        return self.count(lambda s: s == 409)

    @property
    def errors(self) -> int:
        return self.count(lambda s: s not in (202, 409))

    def accept_latency(self, p: float) -> float:
        return pct([d for _, d, s in self.posts if s == 202], p)

    def all_latency(self, p: float) -> float:
        return pct([d for _, d, _ in self.posts], p)

    def series(self, bucket_ms: int = 250):
        """(t s since start, p99 ms, responses/s) per bucket."""
        if not self.posts:
            return [], [], []
        t0 = self.posts[0][0]
        buckets: dict[int, list[float]] = defaultdict(list)
        for t, d, _ in self.posts:
            buckets[int((t - t0) // bucket_ms)].append(d)
        keys = sorted(buckets)
        return ([k * bucket_ms / 1000 for k in keys], [pct(buckets[k], 99) for k in keys],
                [len(buckets[k]) * 1000 / bucket_ms for k in keys])


def load(out: Path):
    runs: dict[str, dict[str, Run]] = defaultdict(dict)
    for f in sorted(out.glob("k6-*-*.csv")):
        m = re.match(r"k6-(\w+)-(\w+)\.csv", f.name)
        if m:
            runs[m.group(1)][m.group(2)] = Run(f)
    ceilings, drains = {}, {}
    if (out / "ceilings.jsonl").exists():
        for line in (out / "ceilings.jsonl").read_text().splitlines():
            if line.strip().startswith("{"):
                c = json.loads(line)
                if c["name"] == "order_writer_drain":
                    drains[c["batch"]] = c
                ceilings.setdefault(c["name"], c)  # the first drain is the default batch
    return runs, ceilings, drains


def kv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)


def oversold(path: Path) -> tuple[int, list[str]]:
    """Deals whose sold units exceed their stock; lines are `deal stock sold`."""
    bad, lines = 0, []
    if path.exists():
        for line in path.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 3:
                deal, stock, sold_units = parts[0], int(parts[1]), int(parts[2])
                lines.append(f"{deal[:8]}… stock {stock}, sold {sold_units}")
                bad += max(0, sold_units - stock)
    return bad, lines


def rate_of(label: str) -> int | None:
    m = re.match(r"rate(\d+)$", label)
    return int(m.group(1)) if m else None


def fmt(x: float, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--doc", type=Path, required=True)
    ap.add_argument("--img", type=Path, required=True)
    a = ap.parse_args()
    out: Path = a.results
    runs, ceilings, drains = load(out)
    machine = kv(out / "machine.txt")
    rss = {**kv(out / "rss-flashdeal.txt"), **kv(out / "rss-baseline.txt")}
    a.img.mkdir(parents=True, exist_ok=True)
    systems = [s for s in ("flashdeal", "baseline") if s in runs]

    # Plot 1: throughput and p99 vs offered load.
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system in systems:
        pts = sorted((rate_of(l), r) for l, r in runs[system].items() if rate_of(l))
        xs = [p[0] for p in pts]
        ax1.plot(xs, [r.accepted / r.window_s for _, r in pts], marker="o", label=system)
        ax2.plot(xs, [r.accept_latency(99) for _, r in pts], marker="o", label=system)
    lim = max((rate_of(l) or 0) for s in systems for l in runs[s]) if systems else 1
    ax1.plot([0, lim], [0, lim], ls=":", c="grey", label="offered")
    ax1.set(xlabel="offered orders/s", ylabel="accepted orders/s", title="Throughput vs offered load")
    ax2.set(xlabel="offered orders/s", ylabel="ms", yscale="log", title="POST /orders p99 latency (202s)")
    for ax in (ax1, ax2):
        ax.grid(alpha=.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(a.img / "throughput_vs_offered.png", dpi=110)

    # Plot 2: latency over time through the sell-out burst.
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for system in systems:
        r = runs[system].get("sellout")
        if r:
            t, p99, rps = r.series()
            ax1.plot(t, p99, label=system)
            ax2.plot(t, rps, label=system)
    ax1.set(ylabel="p99 ms (250 ms buckets)", yscale="log", title="Flash sale burst: POST /orders over time")
    ax2.set(xlabel="seconds since the first order", ylabel="responses/s")
    for ax in (ax1, ax2):
        ax.grid(alpha=.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(a.img / "burst_latency_over_time.png", dpi=110)

    # Numbers for the text.
    def best(system: str) -> Run | None:
        rs = [r for l, r in runs.get(system, {}).items() if rate_of(l)]
        return max(rs, key=lambda r: r.accepted / r.window_s) if rs else None

    fd, bl = best("flashdeal"), best("baseline")
    redis_c = ceilings.get("redis_evalsha_reserve", {}).get("ops_per_sec")
    pg_c = ceilings.get("postgres_unnest_insert", {}).get("ops_per_sec")
    broker_c = ceilings.get("broker_produce", {}).get("ops_per_sec")
    writer = ceilings.get("order_writer_drain", {}).get("ops_per_sec")
    fd_tput = fd.accepted / fd.window_s if fd else None
    bl_tput = bl.accepted / bl.window_s if bl else None
    fd_over, fd_lines = oversold(out / "flashdeal-sold.txt")
    bl_over, bl_lines = oversold(out / "baseline-sold.txt")

    # accept p99 at half the peak: the run whose offered rate is closest to half of FlashDeal's best throughput.
    half = None
    if fd_tput:
        cands = [(abs(rate_of(l) - fd_tput / 2), r, rate_of(l)) for l, r in runs["flashdeal"].items() if rate_of(l)]
        half = min(cands, key=lambda c: c[0]) if cands else None
    sell = runs.get("flashdeal", {}).get("sellout")

    L: list[str] = []
    w = L.append
    w("# Benchmarks\n")
    w(f"Produced by `bash loadtest/run.sh` on {machine.get('cores', '?')} cores "
      f"({machine.get('cpu', '?')}, {machine.get('memory', '?')}); run `{out.name}`. "
      "Everything below comes from that one run; rerun the command to reproduce it. "
      "FlashDeal ran as separate release-built processes (embedded broker, gateway, order-writer, "
      "projector) on the same machine as k6, PostgreSQL and Redis, so they all share 2 cores.\n")
    w("| component | version |\n|---|---|")
    for k in ("rustc", "k6", "postgres", "redis", "broker", "kernel"):
        if k in machine:
            w(f"| {k} | {machine[k]} |")
    w("")
    w("## Ceilings and ratios\n")
    w("| measurement | ops/s | how |\n|---|---:|---|")
    if redis_c:
        w(f"| Redis ceiling: `reserve.lua` EVALSHA | {fmt(redis_c, 0)} | {ceilings['redis_evalsha_reserve'].get('concurrency')} concurrent tasks, no HTTP, no log |")
    if pg_c:
        w(f"| PostgreSQL ceiling: batched `UNNEST` insert | {fmt(pg_c, 0)} rows | the writer's statement, {ceilings['postgres_unnest_insert'].get('batch')} rows per transaction, one connection |")
    if broker_c:
        w(f"| broker ceiling: produce `OrderPlaced` | {fmt(broker_c, 0)} msgs | {ceilings['broker_produce'].get('payload_bytes')} B Avro, idempotent, acks=all |")
    lat = ceilings.get("broker_ack_latency")
    if lat:
        w(f"| broker ack latency, one message at a time | p50 {fmt(lat['p50_ms'], 2)} ms, p99 {fmt(lat['p99_ms'], 2)} ms | "
          "what each `POST /orders` waits for before its 202 |")
    if writer:
        w(f"| order-writer drain | {fmt(writer, 0)} rows | 100k queued intents → rows + `OrderConfirmed`, batch {ceilings['order_writer_drain'].get('batch')} |")
    if fd_tput:
        w(f"| FlashDeal accepted orders (best rate) | {fmt(fd_tput, 0)} | k6 over HTTP, JWT, reservation, produce, 202 |")
    if bl_tput:
        w(f"| baseline successful orders (best rate) | {fmt(bl_tput, 0)} | same k6 scenario, `SELECT … FOR UPDATE` per request |")
    w("")
    w("## Targets\n")
    w("| target | measured | met |\n|---|---|---|")

    def target(name: str, value: str, ok: bool | None):
        w(f"| {name} | {value} | {'yes' if ok else ('no' if ok is not None else '–')} |")

    if fd_tput and redis_c:
        r = fd_tput / redis_c
        target("accepted orders/s ≥ 0.5 × Redis ceiling", f"{fmt(fd_tput, 0)} / {fmt(redis_c, 0)} = **{r:.2f}×**", r >= 0.5)
    if half:
        _, r, rate = half
        p = r.accept_latency(99)
        target("accept p99 ≤ 10 ms at half the peak rate", f"{fmt(p, 2)} ms at {rate}/s offered", p <= 10)
    if fd_tput and bl_tput:
        r = fd_tput / bl_tput
        target("≥ 10 × the baseline's successful orders/s", f"{fmt(fd_tput, 0)} / {fmt(bl_tput, 0)} = **{r:.1f}×**", r >= 10)
    if sell and sell.confirm:
        p = pct(sell.confirm, 99)
        target("accept→confirmed p99 ≤ 200 ms during the burst", f"{fmt(p, 1)} ms (sell-out run, {len(sell.confirm)} polled orders)", p <= 200)
    if writer and pg_c:
        r = writer / pg_c
        target("order-writer rows/s ≥ 0.5 × PostgreSQL ceiling", f"{fmt(writer, 0)} / {fmt(pg_c, 0)} = **{r:.2f}×**", r >= 0.5)
    if "gateway" in rss:
        v = float(rss["gateway"])
        target("gateway RSS < 100 MB through the burst", f"{v:.1f} MB peak (VmHWM)", v < 100)
    target("zero oversell", f"FlashDeal {fd_over}, baseline {bl_over} units over stock", fd_over == 0)
    w("")
    w("## Runs\n")
    w("Each run: k6 `loadtest/k6/flash_sale.js`, ramping arrival rate 0 → offered rate in 1 s, hold, ramp down; "
      "a random token per order. `rate…` runs use a stock no run can exhaust (capacity); `sellout` uses a "
      "small stock with a per-user limit of 2 (the real flash sale). Latencies are for `POST /orders` "
      "answered 202, from k6's `http_req_duration`.\n")
    w("| system | run | offered/s | accepted/s | 409/s | errors | p50 ms | p95 ms | p99 ms | accept→confirmed p99 ms | dropped iterations |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for system in systems:
        for label, r in sorted(runs[system].items(), key=lambda kv_: (rate_of(kv_[0]) or 10**9)):
            ws = r.window_s
            w(f"| {system} | {label} | {rate_of(label) or '–'} | {fmt(r.accepted / ws, 0)} | {fmt(r.refused / ws, 0)} | "
              f"{r.errors} | {fmt(r.accept_latency(50), 2)} | {fmt(r.accept_latency(95), 2)} | {fmt(r.accept_latency(99), 2)} | "
              f"{fmt(pct(r.confirm, 99), 1)} | {r.dropped} |")
    w("")
    w("Peak RSS (VmHWM) per process: " + ", ".join(f"{k} {v} MB" for k, v in rss.items()) + ".\n")
    w("Oversell check (SQL after the runs, confirmed units per deal vs its stock):\n")
    for name, lines in (("FlashDeal", fd_lines), ("baseline", bl_lines)):
        w(f"- {name}: " + ("; ".join(lines) if lines else "no data"))
    w("")
    tune = {l: r for l, r in runs.get("flashdeal", {}).items() if l.startswith("tune")}
    if tune or len(drains) > 1:
        w("## Tuning: each setting against the default, in the same run\n")
        w("| setting | accepted/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|")
        names = {"tunedefault": "default: linger.ms 2, lz4", "tunelinger0": "linger.ms 0",
                 "tunelinger5": "linger.ms 5", "tunecompressionnone": "compression none"}
        for label in ("tunedefault", "tunelinger0", "tunelinger5", "tunecompressionnone"):
            r = tune.get(label)
            if r:
                w(f"| {names[label]} | {fmt(r.accepted / r.window_s, 0)} | {fmt(r.accept_latency(50), 2)} | "
                  f"{fmt(r.accept_latency(99), 2)} | {r.errors} |")
        w("")
        if drains:
            w("| order-writer batch size | rows/s |\n|---|---:|")
            for batch, c in sorted(drains.items(), reverse=True):
                w(f"| {batch} | {fmt(c['ops_per_sec'], 0)} |")
            w("")
    prof = out / "gateway-profile.txt"
    if prof.exists() and prof.read_text().strip():
        w("## Gateway profile\n")
        w("`perf record -e cpu-clock -g` on the gateway process for 6 s of the default tuning run "
          "(self time by shared object and symbol, top 30):\n")
        w("```\n" + "\n".join(line.rstrip(" -") for line in prof.read_text().splitlines()) + "\n```\n")
    w("![Throughput and p99 vs offered load](img/throughput_vs_offered.png)\n")
    w("![POST /orders latency and throughput through the sell-out burst](img/burst_latency_over_time.png)\n")
    notes = Path(__file__).parent / "findings.md"
    if notes.exists():
        w(notes.read_text())
    a.doc.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
