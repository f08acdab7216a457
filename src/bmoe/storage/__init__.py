"""Content-addressed storage of bytes: IPFS-compatible CIDs, blob stores, canonical tensor bytes.

This package knows only bytes (and the canonical safetensors serialisation of tensors); it
imports nothing else from ``bmoe`` (but :mod:`bmoe.lazy_exports` and :mod:`bmoe.hash_memo`).

* :mod:`~bmoe.storage.cid` - CIDs as ``ipfs add --cid-version 1`` computes them, DAG blocks;
* :mod:`~bmoe.storage.store` - the ``BlobStore`` contract;
* :mod:`~bmoe.storage.memory`, :mod:`~bmoe.storage.directory` - its embedded backends;
* :mod:`~bmoe.storage.ipfs` - its backend on an IPFS node (kubo HTTP RPC), :mod:`~bmoe.storage.ipfs_node`
  - a local js-ipfs node to run it against;
* :mod:`~bmoe.storage.car` - CAR v1 files of objects (``ipfs dag import``), :mod:`~bmoe.storage.dag` -
  an object rebuilt from its DAG blocks;
* :mod:`~bmoe.storage.tensors` - canonical tensor serialisation (imported on first use: it needs torch);
* :mod:`~bmoe.storage.digest` - ``sha256_hex``, the one SHA-256 hex helper every layer uses;
* :mod:`~bmoe.storage.errors` - the exceptions.
"""

from typing import TYPE_CHECKING

from bmoe.lazy_exports import lazy_exports
from bmoe.storage.cid import CHUNK_SIZE, MAX_LINKS, cid_of, cid_of_stream, dag_blocks, parse_cid, verify_cid
from bmoe.storage.digest import sha256_hex
from bmoe.storage.directory import DirectoryStore
from bmoe.storage.errors import CorruptObject, InvalidCID, ObjectNotFound, StorageError
from bmoe.storage.memory import MemoryStore
from bmoe.storage.store import BlobStore

if TYPE_CHECKING:
    from bmoe.storage.tensors import SUPPORTED_DTYPES, deserialize_tensors, serialize_tensors

# Tensor serialisation needs torch: imported on first use, so a storage node never loads it.
_TENSOR_NAMES = ("SUPPORTED_DTYPES", "deserialize_tensors", "serialize_tensors")
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(_TENSOR_NAMES, "bmoe.storage.tensors"))

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "SUPPORTED_DTYPES",
    "BlobStore",
    "CorruptObject",
    "DirectoryStore",
    "InvalidCID",
    "MemoryStore",
    "ObjectNotFound",
    "StorageError",
    "cid_of",
    "cid_of_stream",
    "dag_blocks",
    "deserialize_tensors",
    "parse_cid",
    "serialize_tensors",
    "sha256_hex",
    "verify_cid",
]
