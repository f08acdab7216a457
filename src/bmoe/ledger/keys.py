"""Ed25519 identities for ledger participants.

Owns key derivation (deterministic, from a run seed and a participant name: for reproducible
simulations only, since anyone who knows the seed signs as anyone), fresh random keys (what a
deployment's participants hold), signing, signature verification and the on-disk identity file
format. An address is the lower-case hex of the 32-byte Ed25519 verify key; signatures are
lower-case hex of the 64-byte detached signature. A :class:`PublicIdentity` is a participant as
others know it: a name and an address, no key to sign with.

The identity file is JSON, ``{"version": 1, "name": ..., "seed": <32-byte Ed25519 key seed, hex>,
"address": <hex verify key>}``, mode 0600: :func:`load_identity` refuses a file that its group or
others may read or write, and :func:`create_identity` never overwrites one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nacl.exceptions
import nacl.signing

from bmoe.atomic_write import write_atomically
from bmoe.fileio import read_regular_text
from bmoe.ledger.errors import LedgerError

KEY_DOMAIN = b"bmoe-key-v1"
ENROLLED_KEYS = "enrolled"  # a genesis's "keys" when its participants hold keys the run's seed does not give
IDENTITY_FILE_VERSION = 1

_ADDRESS = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class Identity:
    """A named Ed25519 key pair."""

    name: str
    signing_key: nacl.signing.SigningKey = field(repr=False)

    @property
    def address(self) -> str:
        """Lower-case hex of the 32-byte verify key."""
        return self.signing_key.verify_key.encode().hex()

    def sign(self, message: bytes) -> str:
        """Detached Ed25519 signature of ``message``, as 128 lower-case hex chars."""
        return self.signing_key.sign(bytes(message)).signature.hex()


@dataclass(frozen=True)
class PublicIdentity:
    """A participant as the others know it: its name and address, no key (its owner holds that)."""

    name: str
    address: str


def _seed_bytes(seed: int | bytes) -> bytes:
    if isinstance(seed, bool):
        raise TypeError("seed must be int or bytes, not bool")
    if isinstance(seed, int):
        try:
            return seed.to_bytes(8, "big", signed=True)
        except OverflowError:
            raise ValueError(f"int seed {seed} does not fit in a signed 64-bit integer") from None
    if isinstance(seed, bytes | bytearray):
        return bytes(seed)
    raise TypeError(f"seed must be int or bytes, not {type(seed).__name__}")


def derive_identity(seed: int | bytes, name: str) -> Identity:
    """Deterministically derive the identity called ``name`` from a run ``seed``.

    The 32-byte Ed25519 seed is
    ``sha256(b"bmoe-key-v1" + seed_bytes + b"\\x00" + name.encode("utf-8"))`` where an
    int ``seed`` is encoded as 8 bytes, big-endian, two's complement (so it must fit
    in a signed 64-bit integer) and a bytes ``seed`` is used as is.  Same seed and
    name give the same address; a different name gives an unrelated key.
    Not a password KDF: use a high-entropy seed for anything beyond reproducible runs.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    key_seed = hashlib.sha256(KEY_DOMAIN + _seed_bytes(seed) + b"\x00" + name.encode("utf-8")).digest()
    return Identity(name=name, signing_key=nacl.signing.SigningKey(key_seed))


def generate_identity(name: str) -> Identity:
    """A fresh random identity called ``name`` (32 bytes from the OS's CSPRNG): a key nobody else knows."""
    return Identity(name=name, signing_key=nacl.signing.SigningKey(secrets.token_bytes(32)))


def public(identity: Identity | PublicIdentity) -> PublicIdentity:
    """``identity`` as others know it (name and address)."""
    return PublicIdentity(identity.name, identity.address)


def is_address(value: object) -> bool:
    """True for a syntactically valid address (64 lower-case hex chars)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def is_signature_hex(value: object) -> bool:
    """True for a syntactically valid signature (128 lower-case hex chars)."""
    return isinstance(value, str) and _SIGNATURE.fullmatch(value) is not None


def verify_signature(address_hex: str, message: bytes, signature_hex: str) -> bool:
    """True iff ``signature_hex`` is a valid signature of ``message`` by ``address_hex``.

    Only canonical lower-case hex is accepted, so one key has exactly one address
    string.  Returns False on any malformed input; never raises.
    """
    if not (is_address(address_hex) and is_signature_hex(signature_hex)):
        return False
    if not isinstance(message, bytes | bytearray):
        return False
    try:
        verify_key = nacl.signing.VerifyKey(bytes.fromhex(address_hex))
        verify_key.verify(bytes(message), bytes.fromhex(signature_hex))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def _identity_bytes(identity: Identity) -> bytes:
    body = {
        "version": IDENTITY_FILE_VERSION,
        "name": identity.name,
        "seed": identity.signing_key.encode().hex(),
        "address": identity.address,
    }
    return (json.dumps(body, sort_keys=True, indent=2) + "\n").encode("utf-8")


def create_identity(path: str | os.PathLike[str], identity: Identity) -> None:
    """Write ``identity`` to a new file, mode 0600; :class:`LedgerError` if ``path`` exists (keys are never
    overwritten). Created exclusively (``O_EXCL``), so two writers cannot both succeed."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise LedgerError(f"{target} already exists; keys are never overwritten") from None
    except OSError as exc:
        raise LedgerError(f"cannot create {target}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(_identity_bytes(identity))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def save_identity(path: str | os.PathLike[str], identity: Identity) -> None:
    """Write ``identity`` to a JSON file readable only by its owner (mode 0600).

    The file holds ``{"version", "name", "seed" (32-byte key seed, hex), "address"}``.
    It is written to a temporary file in the same directory and renamed into place,
    so a crash leaves either the old file or the new one.
    """
    write_atomically(path, _identity_bytes(identity), mode=0o600)


def load_identity(path: str | os.PathLike[str]) -> Identity:
    """Read an identity written by :func:`save_identity`.

    Raises :class:`LedgerError` with a one-line reason on an unreadable or malformed
    file, on a file its group or others may read or write (a key others can read is no longer
    its owner's alone), or when the stored address does not match the stored seed.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise LedgerError(f"cannot read identity file {target}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
        raise LedgerError(f"identity file {target} is readable or writable by others (mode "
                          f"{stat.S_IMODE(mode):04o}); run `chmod 600 {target}`")
    try:
        body = json.loads(read_regular_text(target))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LedgerError(f"cannot read identity file {target}: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"version", "name", "seed", "address"}:
        raise LedgerError(f"identity file {target}: expected keys version, name, seed, address")
    if body["version"] != IDENTITY_FILE_VERSION:
        raise LedgerError(f"identity file {target}: unsupported version {body['version']!r}")
    if not isinstance(body["name"], str):
        raise LedgerError(f"identity file {target}: name must be a string")
    seed = body["seed"]
    if not isinstance(seed, str) or not re.fullmatch(r"[0-9a-f]{64}", seed):
        raise LedgerError(f"identity file {target}: seed must be 64 lower-case hex chars")
    identity = Identity(name=body["name"], signing_key=nacl.signing.SigningKey(bytes.fromhex(seed)))
    if identity.address != body["address"]:
        raise LedgerError(f"identity file {target}: address does not match the seed")
    return identity
