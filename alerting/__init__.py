"""Alerting: turn detections into alerts and deliver them (alerts index, Alertmanager, metrics, console)."""
