"""ML anomaly detection: features, detectors, training, evaluation, model registry and the streaming engine.

Modules (import what you need; this package itself imports nothing heavy):

- :mod:`detectors.ml.registry` -- ``create(name, **params)``, the detectors (IsolationForest, PyOD's ECOD, COPOD,
  HBOS, LOF, KNN, an ensemble, streaming half-space trees): ``fit(X)`` returns self, ``score_samples(X)`` gives
  0-100 (higher = more anomalous), on numpy arrays or DataFrames;
- :mod:`detectors.ml.features` -- entity behaviour windows (incremental) and per-request content features;
- :mod:`detectors.ml.presets`, :mod:`~detectors.ml.training`, :mod:`~detectors.ml.scoring`,
  :mod:`~detectors.ml.evaluation`, :mod:`~detectors.ml.store` -- what ``logwarden models ...`` runs;
- :mod:`detectors.ml.engine` -- :class:`~detectors.ml.engine.MLEngine`, the rule engine's shape for the pipeline.
"""
