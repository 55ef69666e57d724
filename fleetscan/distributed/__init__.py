"""Distributed scans: shards routed by site to workers inside each network zone.

``fleetscan scan --distributed redis://…`` plans shards by ``fleetscan_site``
(:mod:`.plan`), sends them as JSON (:mod:`.codec`) through Celery
(:mod:`.engine`) to ``fleetscan worker --site S`` processes (:mod:`.worker`),
and gathers their results into one run (:mod:`.coordinator`). Everything but
connect/collect/parse stays on the coordinator. Needs the
``fleetscan[distributed]`` extra (Celery, redis); imported only when used.
"""
