"""The request-content features equal the frozen pre-optimization code (``content_reference``) bit for bit."""

from __future__ import annotations

from collections import UserDict

import numpy as np

from detectors.ml.features.content import RequestContent

from . import content_reference as ref
from .conftest import docs


def test_content_features_equal_the_reference() -> None:
    data = docs(10, ("payload_attack", "credential_stuffing"))
    data[3] = {**data[3], "url": {"path": "/v1/ü/../x", "query": "a=1&b&=2&a=%00"}, "user_agent": {}}
    data[4] = {"@timestamp": data[4]["@timestamp"]}  # nothing to read
    data[5] = UserDict(data[5])  # another Mapping type
    fast, slow = RequestContent().fit(data[:1000]), ref.RequestContent().fit(data[:1000])
    for start in range(0, len(data), 700):
        np.testing.assert_array_equal(
            fast.transform(data[start : start + 700]), slow.transform(data[start : start + 700])
        )
    assert fast.transform([]).shape == slow.transform([]).shape
