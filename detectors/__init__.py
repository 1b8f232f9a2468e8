"""Detectors: the Sigma rule engine (single events and correlations) and, later, the ML detectors.

Every detector turns normalized ECS events into :class:`detectors.detection.Detection` objects;
the alerting package decides what to do with them.
"""
