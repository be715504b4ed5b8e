"""Benchmark settings: the gateway's own, with the channel layer picked by the benchmark.

``BENCH_CHANNEL_LAYER`` (set by ``bench/stack.py: bench_env``):

- ``flat``: ``gateway.bus.memory.FlatInMemoryChannelLayer`` (no per-receive scan);
- ``channels``: Channels' ``InMemoryChannelLayer`` (scans every channel on each receive);
- ``redis``: whatever ``config.settings`` chose from ``GATEWAY_REDIS_URL`` and
  ``GATEWAY_CHANNEL_LAYER``.
"""

import os

from config.settings import *  # noqa: F403

_IN_MEMORY = {
    "flat": "gateway.bus.memory.FlatInMemoryChannelLayer",
    "channels": "channels.layers.InMemoryChannelLayer",
}
_layer = os.environ.get("BENCH_CHANNEL_LAYER", "redis")
if _layer in _IN_MEMORY:
    CHANNEL_LAYERS = {"default": {"BACKEND": _IN_MEMORY[_layer],
                                  "CONFIG": {"channel_capacity": SWITCHBOARD_CAPACITY}}}  # noqa: F405

if os.environ.get("BENCH_NO_FREEZE") == "1":  # soak.py diagnosis: the collector policy off
    import gc

    import gateway.ops.gcpolicy as _policy

    _policy.freeze_survivors = gc.collect  # a round still collects; nothing is frozen
