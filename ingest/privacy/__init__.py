"""Privacy by default: transforms that run on every ECS document before it leaves the pipeline.

In the order :func:`ingest.privacy.config.build_privacy_transforms` chains them:

1. :mod:`~ingest.privacy.minimize`: keep only the fields allowed for the source (default: the catalogue),
   drop ``event.original`` unless configured to keep it;
2. :mod:`~ingest.privacy.encrypt`: seal the original values of chosen fields (AES-256-GCM) for authorized
   re-identification;
3. :mod:`~ingest.privacy.pseudonymize`: replace user identifiers with keyed pseudonyms (HMAC-SHA256);
4. :mod:`~ingest.privacy.redact`: replace secrets (tokens, API keys, passwords, JWTs, AWS keys) in any string;
5. :mod:`~ingest.privacy.mask`: mask e-mail addresses, phone numbers and card numbers in free-text fields.

These five are the reference semantics. When the chain starts with minimization, the factory fuses it into one
:class:`~ingest.privacy.fused.PrivacyPass` that walks each document once over a per-source compiled plan and
gives exactly the same output (tested against the separate steps).

For ``api_access`` records, :mod:`ingest.native` goes one step further when the optional Rust extension is built:
decoding, parsing, enrichment and the fused pass in one native call, from the pass's own compiled plan, asking
the pass (:meth:`~ingest.privacy.fused.PrivacyPass.string_leaf`) for every string that redaction or masking
could change, and falling back to the Python chain for anything unusual (tested against it).

Each transform is a callable ``dict -> dict`` (:data:`ingest.pipeline.Transform`) that changes the document
in place and returns it. None of them puts a value of the document into an exception message or a log line.
"""

from __future__ import annotations

from ingest.errors import IngestError


class PrivacyError(IngestError):
    """Root of the errors of the privacy package."""


class PrivacyConfigError(PrivacyError):
    """The privacy configuration cannot be used; ``field`` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RevealError(PrivacyError):
    """A sealed value could not be opened (unknown key id, wrong key, altered or malformed blob)."""
