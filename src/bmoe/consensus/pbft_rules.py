"""PBFT's rules as pure functions: quorums, primaries, certificates, and the view-change choice.

Owns the checks a third party can run on their own (``verify_certificate`` is what a ledger audit
calls on a block's consensus proof) and the deterministic choice a new primary makes from the
view changes it collected, which every backup recomputes. Returns a reason string or ``None``;
never raises on malformed input. Must not know replica state, timers or transport.

Thresholds (Castro & Liskov, OSDI '99): ``n`` replicas tolerate ``f = (n - 1) // 3`` Byzantine ones;
a quorum is ``q = (n + f) // 2 + 1`` (``= 2f + 1`` when ``n = 3f + 1``), so two quorums share at
least one honest replica.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bmoe.consensus.pbft_messages import (
    COMMIT,
    DOMAIN,
    PRE_PREPARE,
    PREPARE,
    NewViewMessage,
    PreparedCert,
    ViewChangeMessage,
    Vote,
    vote_body,
)
from bmoe.consensus.wire import SignatureChecker
from bmoe.ledger.encoding import canonical_json, is_hex64, sha256_hex
from bmoe.ledger.keys import is_signature_hex

GENESIS_DIGEST = sha256_hex(b"bmoe-pbft-genesis")

_checker = SignatureChecker(DOMAIN)


def max_faulty(n: int) -> int:
    """The most Byzantine replicas ``n`` replicas tolerate: ``f < n / 3``."""
    return (n - 1) // 3


def quorum(n: int, f: int) -> int:
    """Smallest set two of which always share an honest replica: ``2f + 1`` when ``n = 3f + 1``."""
    return (n + f) // 2 + 1


def primary_of(view: int, names: Sequence[str]) -> str:
    """The primary of ``view``: ``names[view mod n]`` (``names`` sorted)."""
    return names[view % len(names)]


def chain_digest(previous: str, height: int, payload_hash: str) -> str:
    """Checkpoint digest: a hash chain over every decided (height, payload hash)."""
    return sha256_hex(canonical_json({"prev": previous, "height": height, "payload_hash": payload_hash}))


def make_certificate(view: int, height: int, digest: str, commits: Mapping[str, str], q: int) -> dict[str, Any]:
    """The commit certificate: the first ``q`` (by name) matching commit signatures."""
    chosen = sorted(commits.items())[:q]
    return {"view": view, "height": height, "payload_hash": digest, "commits": [[n, s] for n, s in chosen]}


def vote_signed_by(vote: Vote, validators: Mapping[str, str], checker: SignatureChecker = _checker) -> bool:
    address = validators.get(vote.sender)
    return address is not None and checker.verify(address, vote.body(), vote.sig)


def certificate_error(
    cert: Any, validators: Mapping[str, str], f: int, checker: SignatureChecker = _checker
) -> str | None:
    """Why ``cert`` is not a valid commit certificate for ``validators`` tolerating ``f``; ``None`` if it is."""
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        return "f must be a non-negative integer"
    n = len(validators)
    if n < 3 * f + 1:
        return f"{n} validators cannot tolerate f={f} (need n >= 3f + 1)"
    if not isinstance(cert, dict) or set(cert) != {"view", "height", "payload_hash", "commits"}:
        return "certificate must have exactly view, height, payload_hash, commits"
    view, height, digest, commits = cert["view"], cert["height"], cert["payload_hash"], cert["commits"]
    if isinstance(view, bool) or not isinstance(view, int) or view < 0:
        return "view must be a non-negative integer"
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        return "height must be a positive integer"
    if not is_hex64(digest):
        return "payload_hash must be 64 lower-case hex characters"
    if not isinstance(commits, list):
        return "commits must be a list"
    q = quorum(n, f)
    signers: set[str] = set()
    for i, pair in enumerate(commits):
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
            return f"commits[{i}] must be [name, signature]"
        name, sig = pair
        if name in signers:
            return f"commits[{i}]: {name!r} signs twice"
        if name not in validators:
            return f"commits[{i}]: {name!r} is not a validator"
        if not is_signature_hex(sig) or not checker.verify(validators[name], vote_body(COMMIT, name, view, height,
                                                                                       digest), sig):
            return f"commits[{i}]: bad signature from {name!r}"
        signers.add(name)
    if len(signers) < q:
        return f"{len(signers)} commit signatures < quorum {q}"
    return None


def verify_certificate(cert: Any, validators: dict[str, str], f: int) -> str | None:
    """Check a PBFT commit certificate (``Committed.proof``) on its own: ``None`` if valid, else why not.

    ``validators`` maps replica names to addresses (hex Ed25519 keys); ``f`` is the fault bound the
    chain was run with. Valid means at least ``q = (n + f) // 2 + 1`` distinct validators signed
    ``COMMIT(view, height, payload_hash)``.
    """
    return certificate_error(cert, validators, f)


def prepared_error(
    cert: PreparedCert, validators: Mapping[str, str], names: Sequence[str], f: int,
    checker: SignatureChecker = _checker,
) -> str | None:
    """A prepared certificate: the view's primary pre-prepared it and ``q - 1`` other replicas prepared it."""
    pp = cert.pre_prepare
    if pp.kind != PRE_PREPARE or pp.sender != primary_of(pp.view, names):
        return "prepared certificate: pre-prepare not from the view's primary"
    if not vote_signed_by(pp, validators, checker):
        return "prepared certificate: bad pre-prepare signature"
    backups: set[str] = set()
    for vote in cert.prepares:
        if vote.kind != PREPARE or (vote.view, vote.height, vote.digest) != (pp.view, pp.height, pp.digest):
            return "prepared certificate: a prepare for another slot or value"
        if vote.sender == pp.sender or vote.sender in backups:
            return "prepared certificate: prepares must come from distinct backups"
        if not vote_signed_by(vote, validators, checker):
            return f"prepared certificate: bad prepare signature from {vote.sender!r}"
        backups.add(vote.sender)
    q = quorum(len(names), f)
    if len(backups) < q - 1:
        return f"prepared certificate: {len(backups)} prepares < {q - 1}"
    return None


def view_change_error(
    vc: ViewChangeMessage, validators: Mapping[str, str], names: Sequence[str], f: int, *, need_payload: bool,
    checker: SignatureChecker = _checker,
) -> str | None:
    """A VIEW-CHANGE is justified by what it carries: a certificate for its executed height and a
    prepared certificate (from an earlier view) above it."""
    if vc.executed == 0:
        if vc.executed_cert is not None:
            return "view change: a certificate for height 0"
    else:
        if vc.executed_cert is None or vc.executed_cert.get("height") != vc.executed:
            return "view change: executed height without its commit certificate"
        reason = certificate_error(vc.executed_cert, validators, f, checker)
        if reason:
            return f"view change: executed certificate: {reason}"
    if vc.prepared is not None:
        if vc.prepared.height <= vc.executed or vc.prepared.view >= vc.view:
            return "view change: prepared certificate must be above executed and from an earlier view"
        reason = prepared_error(vc.prepared, validators, names, f, checker)
        if reason:
            return f"view change: {reason}"
        if need_payload and (vc.payload is None or sha256_hex(vc.payload) != vc.prepared.digest):
            return "view change: the prepared payload is missing or does not match its digest"
    elif vc.payload is not None:
        return "view change: a payload without a prepared certificate"
    return None


def select_reproposal(view_changes: Sequence[ViewChangeMessage]) -> tuple[int, PreparedCert | None]:
    """What a new view must re-propose: ``(e*, cert)``.

    ``e*`` is the highest executed height any view change proves (by certificate). An honest replica
    prepares height ``h`` only after executing ``h - 1``, so no honest replica can have sent a commit
    above ``e* + 1`` (else a quorum member would have proved more); the only height whose fate is
    open is ``e* + 1``, and the value to keep is the prepared certificate there with the highest view
    (Castro & Liskov's rule, specialised to one height in flight).
    """
    e_star = max((vc.executed for vc in view_changes), default=0)
    candidates = [vc.prepared for vc in view_changes if vc.prepared is not None and vc.prepared.height == e_star + 1]
    if not candidates:
        return e_star, None
    return e_star, max(candidates, key=lambda c: (c.view, c.digest))


def new_view_error(
    nv: NewViewMessage, validators: Mapping[str, str], names: Sequence[str], f: int,
    checker: SignatureChecker = _checker,
) -> str | None:
    """A NEW-VIEW is valid when ``q`` valid view changes for its view justify exactly its proposal."""
    if nv.sender != primary_of(nv.view, names):
        return "new view not from the view's primary"
    senders = [vc.sender for vc in nv.view_changes]
    if len(set(senders)) != len(senders):
        return "new view: two view changes from one replica"
    q = quorum(len(names), f)
    if len(senders) < q:
        return f"new view: {len(senders)} view changes < quorum {q}"
    for vc in nv.view_changes:
        if vc.view != nv.view:
            return f"new view: a view change for view {vc.view}"
        address = validators.get(vc.sender)
        if address is None or not checker.verify(address, vc.body(), vc.sig):
            return f"new view: bad view-change signature from {vc.sender!r}"
        reason = view_change_error(vc, validators, names, f, need_payload=False, checker=checker)
        if reason:
            return f"new view: {reason}"
    _, chosen = select_reproposal(nv.view_changes)
    pp = nv.pre_prepare
    if chosen is None:
        if pp is not None or nv.payload is not None:
            return "new view: a re-proposal that no view change justifies"
        return None
    if pp is None:
        return "new view: the prepared value was not re-proposed"
    if (pp.sender, pp.view, pp.height, pp.digest) != (nv.sender, nv.view, chosen.height, chosen.digest):
        return "new view: the re-proposal differs from the prepared value"
    if not vote_signed_by(pp, validators, checker):
        return "new view: bad pre-prepare signature"
    if nv.payload is None or sha256_hex(nv.payload) != pp.digest:
        return "new view: the re-proposed payload is missing or does not match its digest"
    return None
