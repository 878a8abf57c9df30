"""API keys: which key a request presents, known by the SHA-256 digests in the settings.

The app never holds the keys themselves, only their digests (API_KEY_DIGESTS, and the
revoked ones in REVOKED_API_KEY_DIGESTS). A presented key is hashed once and compared with
every digest in constant time (hmac.compare_digest, no early exit), so the time an answer
takes says nothing about how close a guess was, nor which key matched.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from core.config import Settings

KeyState = Literal["valid", "revoked", "unknown"]


def key_digest(key: str) -> str:
    """The SHA-256 of a key, in hex: what the settings hold (the deploy computes the same)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What a presented key turned out to be; ``name`` is None for an unknown key."""

    state: KeyState
    name: str | None = None


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        valid: KeyState = "valid"
        revoked: KeyState = "revoked"
        self._keys = [
            (name, bytes.fromhex(digest), state)
            for digests, state in ((settings.api_key_digests, valid),
                                   (settings.revoked_api_key_digests, revoked))
            for name, digest in digests.items()
        ]  # fmt: skip

    def identify(self, key: str) -> Identity:
        presented = hashlib.sha256(key.encode()).digest()
        found = Identity("unknown")
        for name, digest, state in self._keys:
            if hmac.compare_digest(presented, digest):
                found = Identity(state, name)
        return found
