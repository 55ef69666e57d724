"""Shard planning: split a run's targets by site into bounded shards.

Pure functions, no broker: which hosts go to which site's queue, in pieces
small enough that losing one worker loses (and redelivers) little work.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetscan.distributed.codec import Shard, ShardSettings
from fleetscan.model import Target

DEFAULT_SHARD_SIZE = 50
QUEUE_PREFIX = "fleetscan.site."


def queue_name(site: str) -> str:
    """The broker queue the workers of ``site`` consume."""
    return QUEUE_PREFIX + site


def plan_shards(
    targets: Sequence[Target],
    settings: ShardSettings,
    *,
    run_id: str,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> list[Shard]:
    """Shards of at most ``shard_size`` hosts, each of one site, in inventory
    order within a site; sites in order of first appearance. Shard ids are
    ``<run_id>/<site>/<n>`` so a result always names the run it belongs to."""
    if shard_size < 1:
        raise ValueError("shard size must be at least 1")
    by_site: dict[str, list[Target]] = {}
    for t in targets:
        by_site.setdefault(t.site, []).append(t)
    shards: list[Shard] = []
    for site, hosts in by_site.items():
        for n, start in enumerate(range(0, len(hosts), shard_size)):
            shards.append(
                Shard(
                    id=f"{run_id}/{site}/{n}",
                    site=site,
                    settings=settings,
                    targets=tuple(hosts[start : start + shard_size]),
                )
            )
    return shards
