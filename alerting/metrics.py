"""Prometheus metrics of the alerting stage (injected registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class AlertMetrics:
    alerts: Counter
    updates: Counter
    delivery_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AlertMetrics:
        return cls(
            alerts=Counter(
                "logwarden_alerts",
                "Alerts raised (first emission only)",
                ["rule_id", "severity"],
                registry=registry,
            ),
            updates=Counter(
                "logwarden_alert_updates",
                "Updates of open alerts (more events in the same window)",
                ["rule_id"],
                registry=registry,
            ),
            delivery_failures=Counter(
                "logwarden_alert_delivery_failures",
                "Failed deliveries of alerts to a sink",
                ["sink"],
                registry=registry,
            ),
        )
