"""CIDs as the contract holds them: the sha2-256 digest and the multicodec, ``(bytes32, uint16)``.

Owns the mapping between bmoe's CID text (CIDv1, base32, sha2-256; ``storage/cid.py``) and the
contract's ``Cid`` struct. The codec is kept because a digest alone does not name an object: blobs
over 256 KiB are ``dag-pb`` roots, smaller ones ``raw`` leaves.
"""

from __future__ import annotations

import base64

from bmoe.ethereum.errors import RecordsError
from bmoe.storage import InvalidCID, parse_cid

RAW = 0x55
DAG_PB = 0x70
_PREFIX = {RAW: b"\x01\x55\x12\x20", DAG_PB: b"\x01\x70\x12\x20"}  # CIDv1, codec, sha2-256, 32 bytes
_CODEC_OF_PREFIX = {prefix: codec for codec, prefix in _PREFIX.items()}
NO_CID: tuple[bytes, int] = (b"\x00" * 32, 0)  # the contract's empty Cid

ChainCid = tuple[bytes, int]  # (digest, codec): the contract's Cid struct as web3 encodes it


def cid_to_chain(cid: str) -> ChainCid:
    """``cid`` as the contract's ``Cid``; :class:`RecordsError` if it is not a bmoe CID."""
    try:
        text = parse_cid(cid)
    except InvalidCID as err:
        raise RecordsError(f"not a bmoe CID: {err}") from None
    body = text[1:].upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    codec = _CODEC_OF_PREFIX.get(raw[:4])
    if codec is None or len(raw) != 36:
        raise RecordsError(f"{cid} is not a CIDv1 raw or dag-pb sha2-256 CID")
    return raw[4:], codec


def cid_from_chain(digest: bytes, codec: int) -> str | None:
    """The CID text of a contract ``Cid``, or None for the empty one."""
    if (bytes(digest), codec) == NO_CID:
        return None
    prefix = _PREFIX.get(codec)
    if prefix is None or len(digest) != 32:
        raise RecordsError(f"the contract holds a CID of codec {codec:#x}, neither raw nor dag-pb")
    return "b" + base64.b32encode(prefix + bytes(digest)).decode("ascii").lower().rstrip("=")


def optional_cid(cid: str | None) -> ChainCid:
    """``cid`` as a ``Cid``, the empty one for None."""
    return NO_CID if cid is None else cid_to_chain(cid)
