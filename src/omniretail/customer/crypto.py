"""Encryption of personal data: envelope encryption with per-person data keys.

* Each person (profile) gets its own random Fernet data key the first time personal data is
  stored for them. The data key is stored only wrapped (encrypted) by the master key ring.
* The master key ring is a ``MultiFernet`` over ``OMNI_PII_KEYS``: the first key wraps new
  data keys, every key unwraps. Rotation re-wraps the data keys (``rotate_wrapped``); the data
  itself never needs re-encryption.
* Erasure destroys a person's data key (crypto-shredding): every ciphertext of that person, in
  any table or backup, becomes unreadable.
* Lookups use a blind index: HMAC-SHA256 under a separate key over the normalised value, so
  equality search works without storing the value in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from omniretail.core.errors import AppError
from omniretail.customer.settings import get_customer_settings


class _BlindIndex:
    """HMAC-SHA256 under one key, with the keyed inner and outer SHA-256 states computed once
    (RFC 2104): each value then costs two hash copies instead of re-keying, the same result
    as ``hmac.new(key, message, sha256).hexdigest()`` (checked when built)."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # the SHA-256 block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass(frozen=True)
class KeyRing:
    master: MultiFernet
    index_key: bytes
    _index: _BlindIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = _BlindIndex(self.index_key)
        probe = b"omniretail\x1fblind-index"
        if index(probe) != hmac.new(self.index_key, probe, hashlib.sha256).hexdigest():
            raise AssertionError("blind index differs from HMAC-SHA256")  # pragma: no cover
        object.__setattr__(self, "_index", index)

    def blind_index(self, kind: str, normalised: str) -> str:
        return self._index(f"{kind}\x1f{normalised}".encode())

    def new_data_key(self) -> tuple[Fernet, str]:
        raw = Fernet.generate_key()
        return Fernet(raw), self.master.encrypt(raw).decode()

    def unwrap(self, wrapped: str) -> Fernet:
        try:
            return Fernet(self.master.decrypt(wrapped.encode()))
        except InvalidToken:
            raise AppError(
                "pii_key_unavailable",
                "a data key cannot be unwrapped with the configured OMNI_PII_KEYS",
                500,
            ) from None

    def rotate_wrapped(self, wrapped: str) -> str:
        return self.master.rotate(wrapped.encode()).decode()


def encrypt_text(key: Fernet, value: str) -> str:
    return key.encrypt(value.encode()).decode()


def decrypt_text(key: Fernet, token: str) -> str:
    return key.decrypt(token.encode()).decode()


def encrypt_json(key: Fernet, value: Any) -> str:
    return key.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(key: Fernet, token: str) -> Any:
    return json.loads(key.decrypt(token.encode()))


def _load_or_create_key_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        data = {
            "pii_keys": [Fernet.generate_key().decode()],
            "index_key": Fernet.generate_key().decode(),
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            return data
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@lru_cache(maxsize=8)
def _ring(pii_keys: str | None, index_key: str | None, key_file: str) -> KeyRing:
    if not pii_keys or not index_key:
        stored = _load_or_create_key_file(Path(key_file))
        pii_keys = pii_keys or ",".join(stored["pii_keys"])
        index_key = index_key or stored["index_key"]
    keys = [k.strip() for k in pii_keys.split(",") if k.strip()]
    try:
        master = MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError:
        raise AppError(
            "invalid_pii_keys", "OMNI_PII_KEYS must be comma-separated Fernet keys", 500
        ) from None
    return KeyRing(master=master, index_key=index_key.encode())


def key_ring() -> KeyRing:
    s = get_customer_settings()
    return _ring(s.pii_keys, s.pii_index_key, s.pii_key_file)
