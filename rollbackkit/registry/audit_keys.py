"""The Ed25519 key that signs a published audit trail (``rollbackkit audit publish``).

The private key is ``ROLLBACKKIT_AUDIT_KEY`` (PEM text, or the path of a PEM file) or, when
that is unset, ``.rollbackkit/local/audit-signing.key`` (generated on first use, mode 0600,
git-ignored with the rest of ``local/``). It never leaves this module: callers get a
:class:`Signer` that signs bytes and tells its public key. A fingerprint is the sha256 of the
raw 32-byte public key, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rollbackkit.errors import AuditTrailError

KEY_ENV = "ROLLBACKKIT_AUDIT_KEY"
KEY_FILE = "audit-signing.key"


def fingerprint(public_key: bytes) -> str:
    """The sha256 (hex) of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class Signer:
    """Signs with one private key; ``public_key`` is the raw 32 bytes, ``source`` where the key came from."""

    _key: Ed25519PrivateKey
    source: str

    @property
    def public_key(self) -> bytes:
        """The raw public key."""
        return self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        """The public key's fingerprint."""
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> str:
        """The base64 Ed25519 signature of ``data``."""
        return base64.b64encode(self._key.sign(data)).decode()

    def __repr__(self) -> str:  # never the key
        return f"Signer(fingerprint={self.fingerprint[:16]}, source={self.source})"


def _load(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditTrailError(
            f"The audit signing key in {where} is not an unencrypted PEM private key.",
            f"Give {KEY_ENV} an Ed25519 key in PEM (openssl genpkey -algorithm ed25519), or unset it.",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditTrailError(f"The audit signing key in {where} is not an Ed25519 key.", "Use an Ed25519 key.")
    return key


def _given(value: str) -> Signer:
    """The key ``ROLLBACKKIT_AUDIT_KEY`` holds: a PEM block anywhere in it, else the path of a PEM file.

    The value is never echoed: it may be the private key itself, quoted or garbled.
    """
    text = value if "\n" in value else value.replace("\\n", "\n")  # a CI secret often escapes its newlines
    start, end = text.find("-----BEGIN"), text.rfind("-----END")
    if start >= 0 and end > start:  # quotes, "Bag Attributes" preambles and trailers are ignored
        opened, closed = text.find("-----", start + 10) + 5, text.find("-----", end + 8) + 5
        body = "".join(text[opened:end].split())  # lines joined by spaces or escapes: PEM wants 64 columns
        lines = [text[start:opened], *(body[i : i + 64] for i in range(0, len(body), 64)), text[end:closed]]
        return Signer(_load(("\n".join(lines) + "\n").encode(), KEY_ENV), KEY_ENV)
    looks_secret = "\n" in value or "PRIVATE KEY" in value or "-----" in value or len(value) >= 4096
    path = Path(value).expanduser()
    if not looks_secret:
        try:
            if path.is_file():
                return Signer(_load(path.read_bytes(), f"{KEY_ENV} ({path})"), f"{KEY_ENV} ({path})")
        except OSError:
            pass
    raise AuditTrailError(
        f"{KEY_ENV} is neither PEM text nor the path of a readable file (its value is not shown).",
        "Give it the Ed25519 private key in PEM (openssl genpkey -algorithm ed25519) or a PEM file's path.",
    )


def signer(local_dir: Path, *, create: bool = True) -> Signer:
    """The project's signer: ``ROLLBACKKIT_AUDIT_KEY``, else the local key file (created when missing).

    Raises:
        AuditTrailError: The key given is unreadable, not PEM, or not Ed25519; or there is none
            and ``create`` is False.
    """
    given = os.environ.get(KEY_ENV, "").strip()
    if given:
        return _given(given)
    path = local_dir / KEY_FILE
    if path.exists():
        return Signer(_load(path.read_bytes(), str(path)), str(path))
    if not create:
        raise AuditTrailError(
            f"This machine has no audit signing key ({KEY_ENV} is unset and {path} does not exist).",
            f"Set {KEY_ENV} to the trail's private key (PEM text or file).",
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    local_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    return Signer(key, str(path))


def verifies(public_key: bytes, signature: str, data: bytes) -> bool:
    """True when ``signature`` (base64) is the key's Ed25519 signature of ``data``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(signature, validate=True), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
