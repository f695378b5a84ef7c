"""Prometheus metrics, one registry per app (so several apps can live in one process, e.g. in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._admission_children: dict = {}
        self.admissions = Counter(
            "tfs_webhook_admissions",
            "Admission decisions by verdict and deciding check.",
            ["verdict", "check"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tfs_webhook_admission_duration_seconds",
            "Time to decide one admission request.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.s3_checks = Counter(
            "tfs_webhook_s3_checks",
            "SavedModel checks run against S3 (cache misses).",
            registry=self.registry,
        )
        self.s3_requests = Counter(
            "tfs_webhook_s3_requests", "S3 requests made by SavedModel checks.", registry=self.registry
        )
        self.s3_errors = Counter(
            "tfs_webhook_s3_errors",
            "SavedModel checks that could not verify storage.",
            registry=self.registry,
        )
        self.cache = Counter(
            "tfs_webhook_cache_lookups",
            "Check-cache lookups by result (hit, shared, miss).",
            ["cache", "result"],
            registry=self.registry,
        )
        self.bad_requests = Counter(
            "tfs_webhook_bad_requests",
            "Requests refused before a decision, by HTTP status.",
            ["status"],
            registry=self.registry,
        )

    def admission(self, verdict: str, check: str):
        """The admissions counter child for (verdict, check), looked up once (the warm path)."""
        key = (verdict, check)
        child = self._admission_children.get(key)
        if child is None:
            child = self._admission_children[key] = self.admissions.labels(verdict, check)
        return child

    def watch_caches(self, caches: list) -> None:
        """Entries, bytes, evictions and hit ratio of each webhook.cache.TTLCache, read at scrape time."""
        self.registry.register(_CacheCollector(caches))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _CacheCollector:
    def __init__(self, caches: list):
        self.caches = caches

    def describe(self):
        return []

    def collect(self):
        entries = GaugeMetricFamily("tfs_webhook_cache_entries", "Live cache entries.", labels=["cache"])
        size = GaugeMetricFamily(
            "tfs_webhook_cache_bytes", "Estimated bytes held by cache entries.", labels=["cache"]
        )
        limit = GaugeMetricFamily("tfs_webhook_cache_max_bytes", "Cache size bound.", labels=["cache"])
        ratio = GaugeMetricFamily(
            "tfs_webhook_cache_hit_ratio", "Hits / (hits + misses) since start.", labels=["cache"]
        )
        evictions = CounterMetricFamily(
            "tfs_webhook_cache_evictions",
            "Entries dropped: expired (lifetime ended) or size (to stay under the bound).",
            labels=["cache", "reason"],
        )
        for cache in self.caches:
            stats = cache.stats
            entries.add_metric([cache.name], len(cache))
            size.add_metric([cache.name], cache.bytes)
            limit.add_metric([cache.name], cache.max_bytes)
            looked = stats.hits + stats.shared + stats.misses
            ratio.add_metric([cache.name], (stats.hits + stats.shared) / looked if looked else 0.0)
            evictions.add_metric([cache.name, "expired"], stats.expired)
            evictions.add_metric([cache.name, "size"], stats.evicted)
        return [entries, size, limit, ratio, evictions]
