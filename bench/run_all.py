"""Every benchmark of issue 23's table in one run, and one table of ratios against its bars.

    bench/run-all [--out DIR] [--skip fanout10k,...] [--markdown FILE]

Runs, one after another, each with its L (bare ``websockets``) and R (stock Channels)
in the same run, with settings shorter than the benches' defaults so the whole takes
about 15 minutes on the 2-core development machine:

- ``handshakes``: ``bench/handshakes.py --connections 2000 --rounds 5`` (bearer reused,
  bearer fresh, session cookie, ticket; L and R in every round);
- ``memory``: ``bench/open_sockets.py --counts 5000 --layers flat`` (KiB per idle socket
  with 5,000 held, L, R and G);
- ``fanout5k``: ``bench/fanout.py --subscribers 5000 --messages 30 --rate 1`` (two
  gateway processes on Redis pub/sub; L, R, G);
- ``logout``: ``bench/logout.py --sockets 100 --rounds 20`` (two processes; every
  round printed);
- ``fanout10k``: ``bench/fanout.py --subscribers 10000 --messages 20 --rate 1
  --targets L,G``.

Each bench prints its own output as usual (also kept in ``--out``) and writes its
figures with ``--json``; this script only reads those and compares. Ratios are taken
within a round (handshakes: per round, then the median, with the rounds' spread) or
within a run (the others), never across runs. Bars are those of issue 23.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import load_average  # noqa: E402

Figures = dict[str, Any]

BENCHES: dict[str, list[str]] = {
    "handshakes": ["bench/handshakes.py", "--connections", "2000", "--rounds", "5"],
    "memory": ["bench/open_sockets.py", "--counts", "5000", "--layers", "flat",
               "--burst", "500", "--pings", "200"],
    "fanout5k": ["bench/fanout.py", "--subscribers", "5000", "--messages", "30", "--rate", "1"],
    "logout": ["bench/logout.py", "--sockets", "100", "--rounds", "20"],
    "fanout10k": ["bench/fanout.py", "--subscribers", "10000", "--messages", "20", "--rate", "1",
                  "--targets", "L,G"],
}


@dataclass(frozen=True)
class Verdict:
    measure: str
    bar: str
    measured: str
    met: bool | None  # None: not measured in this run


def run_bench(name: str, out: Path) -> Figures | None:
    """Run one bench, echo and keep its output; its ``--json`` figures, or None if it failed."""
    figures, log = out / f"{name}.json", out / f"{name}.log"
    command = [sys.executable, *BENCHES[name], "--json", str(figures)]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    with log.open("w") as kept, subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(line)
            kept.write(line)
    print(f"=== {name}: exit {child.returncode} after {time.monotonic() - started:.0f} s",
          flush=True)
    if child.returncode != 0 or not figures.exists():
        return None
    loaded: Figures = json.loads(figures.read_text())
    return loaded


def spread(values: list[float]) -> str:
    """Median and the range over rounds: ``1.21x (1.15-1.30)``."""
    if len(values) == 1:
        return f"{values[0]:.2f}x"
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def round_ratios(samples: Figures, mode: str, base: str, field: str) -> list[float]:
    return [s[field] / b[field] for s, b in zip(samples[mode], samples[base], strict=True)]


def at_most(values: list[float], bar: float) -> bool:
    return statistics.median(values) <= bar


def handshake_verdicts(samples: Figures) -> list[Verdict]:
    l_name, verdicts = "L (bare websockets)", []
    for mode, label, bar in (("bearer, same token", "bearer, reused token", 1.25),
                             ("bearer, distinct", "bearer, fresh token", 1.6),
                             ("session cookie", "session cookie", 1.3)):
        cpu = round_ratios(samples, mode, l_name, "server_cpu_us")
        rate = round_ratios(samples, mode, l_name, "rate")
        verdicts.append(Verdict(f"{label}: server CPU per handshake vs L", f"≤ {bar}x",
                                f"{spread(cpu)}; rate {spread(rate)} L", at_most(cpu, bar)))
    cpu = round_ratios(samples, "ticket", "bearer, same token", "server_cpu_us")
    rate = round_ratios(samples, "ticket", "bearer, same token", "rate")
    verdicts.append(Verdict("ticket: CPU per handshake vs bearer", "≤ 1.3x", spread(cpu),
                            at_most(cpu, 1.3)))
    verdicts.append(Verdict("ticket: rate vs bearer", "≥ 0.8x", spread(rate),
                            statistics.median(rate) >= 0.8))
    return verdicts


def memory_verdicts(rows: list[Figures]) -> list[Verdict]:
    kib = {r["target"]: r["kib_per_socket"] for r in rows}
    ratio = kib["G"] / kib["L"]
    return [Verdict(f"memory per idle authenticated socket vs L ({rows[0]['count']:,} held)",
                    "≤ 1.3x", f"{ratio:.2f}x ({kib['G']:.1f} KiB; L {kib['L']:.1f}, "
                    f"R {kib.get('R', 0):.1f})", ratio <= 1.3)]


def fanout_verdicts(rows: Figures, subscribers: str, p99_bar_ms: float,
                    cpu_bar: float | None) -> list[Verdict]:
    g, base = rows["G"], rows["L"]
    rate, cpu = g["rate"] / base["rate"], g["cpu_per_message"] / base["cpu_per_message"]
    p99 = g["p99"] * 1000
    delivered = g["received"] / max(g["expected"], 1)
    measured = (f"p99 {p99:.0f} ms (L {base['p99'] * 1000:.0f}); rate {rate:.2f}x L; "
                f"delivered {100 * delivered:.1f}%")
    verdicts = [Verdict(f"fan-out, {subscribers} subscribers, 2 processes: p99 and rate",
                        f"p99 ≤ {p99_bar_ms:.0f} ms, rate ≥ 0.95x L, all delivered", measured,
                        p99 <= p99_bar_ms and rate >= 0.95 and delivered >= 1.0)]
    if cpu_bar is not None:
        extra = f"; R {g['cpu_per_message'] / rows['R']['cpu_per_message']:.2f}x" if "R" in rows else ""
        verdicts.append(Verdict(f"fan-out, {subscribers} subscribers: server CPU per delivery vs L",
                                f"≤ {cpu_bar}x", f"{cpu:.2f}x ({g['cpu_per_message'] * 1e6:.1f} µs; "
                                f"L {base['cpu_per_message'] * 1e6:.1f}){extra}", cpu <= cpu_bar))
    return verdicts


def logout_verdicts(figures: Figures) -> list[Verdict]:
    rounds = figures["rounds"]
    return [Verdict("back-channel logout, every socket of the session closed, 2 processes",
                    "p99 ≤ 100 ms", f"p99 {figures['p99']:.1f} ms, p50 {figures['p50']:.1f} ms, "
                    f"max {max(rounds):.1f} ms ({len(rounds)} rounds, {figures['sockets']} sockets)",
                    figures["p99"] <= 100)]


JUDGES: dict[str, Callable[[Any], list[Verdict]]] = {
    "handshakes": handshake_verdicts,
    "memory": memory_verdicts,
    "fanout5k": lambda rows: fanout_verdicts(rows, "5,000", 250, 1.2),
    "logout": logout_verdicts,
    "fanout10k": lambda rows: fanout_verdicts(rows, "10,000", 200, None),
}
MISSING = {
    "handshakes": ["bearer, reused token", "bearer, fresh token", "session cookie", "ticket"],
    "memory": ["memory per idle authenticated socket"],
    "fanout5k": ["fan-out, 5,000 subscribers"],
    "logout": ["back-channel logout"],
    "fanout10k": ["fan-out, 10,000 subscribers"],
}


def markdown(verdicts: list[Verdict], header: str) -> str:
    lines = [header, "", "| measure | bar | measured | met |", "|---|---|---|---|"]
    for v in verdicts:
        met = "not measured" if v.met is None else ("**yes**" if v.met else "**no**")
        lines.append(f"| {v.measure} | {v.bar} | {v.measured} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="where each bench's output and figures go")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated benches")
    parser.add_argument("--skip", default="", help="comma-separated benches to leave out")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--commit", help="the commit measured (default: git's HEAD here; a "
                                         "snapshot made with git archive has no .git)")
    args = parser.parse_args()
    chosen = [n for n in args.only.split(",") if n and n not in args.skip.split(",")]
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benches {sorted(unknown)}; choose from {','.join(BENCHES)}")
    out = args.out or Path(f"/tmp/bench-run-all-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                           text=True, capture_output=True).stdout.strip()
    started, load_before = time.time(), load_average()
    verdicts: list[Verdict] = []
    for name in chosen:
        figures = run_bench(name, out)
        verdicts += (JUDGES[name](figures) if figures is not None
                     else [Verdict(m, "", "the bench failed: see its log", None) for m in MISSING[name]])
    began = time.strftime('%Y-%m-%d %H:%M', time.localtime(started))
    header = (f"`bench/run-all` at {commit or 'an unknown commit'}, {began}-{time.strftime('%H:%M')}"
              f" ({(time.time() - started) / 60:.0f} min), load "
              f"{load_before} before, {load_average()} after; outputs in {out}")
    table = markdown(verdicts, header)
    (out / "table.md").write_text(table)
    if args.markdown:
        args.markdown.write_text(table)
    print("\n" + table)


if __name__ == "__main__":
    main()
