"""Decoders for the text encodings signatures arrive in: base64, PEM and DER strings."""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509

from .reasons import Reason, Rejected

_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


def decode_base64(text: str, *, what: str, allow_empty: bool = False) -> bytes:
    """Decode standard or URL-safe base64, padded or not (DSSE allows both alphabets).

    Whitespace, a mix of the two alphabets, and impossible lengths are refused: a signature
    that only decodes after lenient clean-up is not the signature that was produced.
    """
    if not _BASE64_TEXT.fullmatch(text):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not base64 (unexpected characters)")
    standard = "+" in text or "/" in text
    url_safe = "-" in text or "_" in text
    if standard and url_safe:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} mixes the standard and URL-safe base64 alphabets")
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has an impossible base64 length")
    if text != unpadded and len(text) % 4 != 0:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has wrong base64 padding")
    normalized = unpadded.replace("-", "+").replace("_", "/")
    normalized += "=" * (-len(normalized) % 4)
    try:
        decoded = base64.b64decode(normalized, validate=True)
    except binascii.Error as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not valid base64: {exc}") from None
    if not decoded and not allow_empty:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is empty")
    return decoded


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_hex(text: str, *, what: str, length: int | None = None) -> bytes:
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not hexadecimal")
    raw = bytes.fromhex(text)
    if length is not None and len(raw) != length:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} must be {length} bytes, found {len(raw)}")
    return raw


def load_pem_certificates(text: str | bytes, *, what: str) -> list[x509.Certificate]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not a PEM certificate: {exc}") from None
    return certificates


def load_pem_certificate(text: str | bytes, *, what: str) -> x509.Certificate:
    certificates = load_pem_certificates(text, what=what)
    if len(certificates) != 1:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} holds {len(certificates)} certificates, expected one")
    return certificates[0]


def der_utf8_string(value: bytes, *, what: str) -> str:
    """Decode a DER UTF8String (tag 12), the encoding of Fulcio's newer extensions (…57264.1.8+)."""
    if len(value) < 2 or value[0] != 0x0C:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not a DER UTF8String")
    first = value[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(value) < 2 + count:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what} has an invalid DER length")
        length = int.from_bytes(value[2 : 2 + count], "big")
        offset = 2 + count
        if length < 0x80 or value[2] == 0:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what} has a non-minimal DER length")
    if offset + length != len(value):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has a DER length that does not match its content")
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not valid UTF-8") from None
