"""Keeps credentials out of every message, log line and exception the publishing code produces."""

from __future__ import annotations

import base64
import re
import threading

# Shapes of GitHub credentials worth hiding even when we never saw the exact value.
_CREDENTIAL_SHAPES = (
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWTs
    re.compile(r"(?i)(?<=authorization: )[^\r\n]+"),
    re.compile(r"(?i)(?<=://)[^/@\s]+(?=@)"),  # user:password@ in URLs
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
)
MASK = "***"


class Redactor:
    """Replaces every secret it was told about (and their encoded forms) with ***."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) < 4:  # masking tiny strings would garble ordinary text
            return
        forms = {secret, base64.b64encode(f"x-access-token:{secret}".encode()).decode()}
        with self._lock:
            self._secrets |= forms

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        for shape in _CREDENTIAL_SHAPES:
            text = shape.sub(MASK, text)
        return text
