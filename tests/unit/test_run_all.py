"""bench/run_all.py: the table's verdicts from each bench's --json figures, against issue 23's bars."""

from __future__ import annotations

from typing import Any

from bench.run_all import fanout_verdicts, handshake_verdicts, logout_verdicts, markdown, memory_verdicts

L = "L (bare websockets)"


def sample(rate: float, cpu: float) -> dict[str, float]:
    return {"rate": rate, "server_cpu_us": cpu, "auth_us": 0.0}


def handshakes(reused_cpu: list[float]) -> dict[str, list[dict[str, float]]]:
    """Three rounds; L costs 100 µs every round."""
    return {L: [sample(1000, 100)] * 3,
            "bearer, same token": [sample(900, cpu) for cpu in reused_cpu],
            "bearer, distinct": [sample(800, 150)] * 3,
            "session cookie": [sample(800, 140)] * 3,
            "ticket": [sample(700, 130)] * 3}


def test_handshake_ratios_are_per_round_medians_against_the_bars() -> None:
    verdicts = {v.measure: v for v in handshake_verdicts(handshakes([110, 130, 200]))}
    reused = verdicts["bearer, reused token: server CPU per handshake vs L"]
    assert not reused.met  # rounds 1.10, 1.30, 2.00: median 1.30 > 1.25
    assert reused.measured.startswith("1.30x (1.10-2.00)")


def test_a_ratio_over_its_bar_is_not_met() -> None:
    verdicts = {v.measure: v for v in handshake_verdicts(handshakes([110, 120, 200]))}
    assert verdicts["bearer, reused token: server CPU per handshake vs L"].met
    assert verdicts["bearer, fresh token: server CPU per handshake vs L"].met  # 1.5x <= 1.6x
    assert not verdicts["session cookie: server CPU per handshake vs L"].met  # 1.4x > 1.3x
    ticket_cpu = verdicts["ticket: CPU per handshake vs bearer"]
    assert ticket_cpu.met and ticket_cpu.measured.startswith("1.08x")  # 130 / 120
    assert not verdicts["ticket: rate vs bearer"].met  # 700 / 900 < 0.8


def fanout(g_p99: float, g_cpu: float, received: int = 100) -> dict[str, Any]:
    row = {"rate": 5000.0, "p99": 0.2, "cpu_per_message": 20e-6, "received": 100, "expected": 100}
    return {"L": row, "G": {**row, "p99": g_p99, "cpu_per_message": g_cpu, "received": received}}


def test_fanout_needs_p99_rate_and_every_message() -> None:
    met, cpu = fanout_verdicts(fanout(0.180, 23e-6), "5,000", 250, 1.2)
    assert met.met and cpu.met
    assert not fanout_verdicts(fanout(0.260, 23e-6), "5,000", 250, 1.2)[0].met
    assert not fanout_verdicts(fanout(0.180, 23e-6, received=99), "5,000", 250, 1.2)[0].met
    assert not fanout_verdicts(fanout(0.180, 25e-6), "5,000", 250, 1.2)[1].met
    assert len(fanout_verdicts(fanout(0.180, 25e-6), "10,000", 200, None)) == 1


def test_memory_and_logout_bars() -> None:
    rows = [{"target": "L", "kib_per_socket": 10.0, "count": 5000},
            {"target": "G", "kib_per_socket": 13.5, "count": 5000}]
    assert not memory_verdicts(rows)[0].met
    assert logout_verdicts({"rounds": [30.0, 99.0], "p99": 99.0, "p50": 30.0, "sockets": 100})[0].met
    assert not logout_verdicts({"rounds": [30.0, 101.0], "p99": 101.0, "p50": 30.0,
                                "sockets": 100})[0].met


def test_markdown_has_one_row_per_verdict() -> None:
    verdicts = logout_verdicts({"rounds": [30.0], "p99": 30.0, "p50": 30.0, "sockets": 100})
    table = markdown(verdicts, "header")
    assert table.splitlines()[3:] == ["|---|---|---|---|", f"| {verdicts[0].measure} | p99 ≤ 100 ms "
                                      "| p99 30.0 ms, p50 30.0 ms, max 30.0 ms (1 rounds, 100 sockets) "
                                      "| **yes** |"]
