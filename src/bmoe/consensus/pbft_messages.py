"""PBFT messages: their fields, their signed bodies, and the strict parser from bytes.

Owns the wire format of the eight PBFT messages (see the table in ``bmoe.consensus``), their
parsed dataclasses and their constructors. Every message is the canonical JSON of an envelope
``{"body": {...}, "sig": hex}`` where ``sig`` is the sender's Ed25519 signature of
``DOMAIN + canonical_json(body)`` and ``body["from"]`` names the sender; a payload travels beside
the body (base64, bound to it by the digest inside the body), never inside the signature.

The parser checks syntax, the sender's membership and the outer signature, in that order, raising
``Rejected`` with the first failing reason. Must not know the protocol's rules (quorums, views,
heights): those live in ``pbft_rules`` and ``pbft``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bmoe.consensus.engine import Reason, Rejected
from bmoe.consensus.wire import (
    SignatureChecker,
    decode_message,
    encode_payload,
    expect_bool,
    expect_hex64,
    expect_list,
    expect_literal,
    expect_name,
    expect_object,
    expect_payload,
    expect_sig,
    expect_uint,
    malformed,
)
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.keys import Identity

DOMAIN = b"bmoe-pbft-v1\x00"

PRE_PREPARE, PREPARE, COMMIT = "pre-prepare", "prepare", "commit"
CHECKPOINT, VIEW_CHANGE, NEW_VIEW = "checkpoint", "view-change", "new-view"
STATUS, DECIDED = "status", "decided"
VOTE_KINDS = (PRE_PREPARE, PREPARE, COMMIT)
KINDS = (*VOTE_KINDS, CHECKPOINT, VIEW_CHANGE, NEW_VIEW, STATUS, DECIDED)


@dataclass(frozen=True)
class Vote:
    """A pre-prepare, prepare or commit: ``kind`` for ``digest`` at (``view``, ``height``)."""

    kind: str
    sender: str
    view: int
    height: int
    digest: str
    sig: str

    def body(self) -> dict[str, Any]:
        return vote_body(self.kind, self.sender, self.view, self.height, self.digest)

    def signed(self) -> dict[str, Any]:
        return {"body": self.body(), "sig": self.sig}


@dataclass(frozen=True)
class VoteMessage:
    vote: Vote
    payload: bytes | None  # pre-prepare only


@dataclass(frozen=True)
class CheckpointMessage:
    sender: str
    height: int
    digest: str  # chain digest of every payload hash up to ``height``
    sig: str

    def body(self) -> dict[str, Any]:
        return {"type": CHECKPOINT, "from": self.sender, "height": self.height, "digest": self.digest}


@dataclass(frozen=True)
class PreparedCert:
    """A pre-prepare plus ``q - 1`` matching prepares from other replicas: the value was prepared."""

    pre_prepare: Vote
    prepares: tuple[Vote, ...]

    @property
    def view(self) -> int:
        return self.pre_prepare.view

    @property
    def height(self) -> int:
        return self.pre_prepare.height

    @property
    def digest(self) -> str:
        return self.pre_prepare.digest

    def to_json(self) -> dict[str, Any]:
        return {"pre_prepare": self.pre_prepare.signed(), "prepares": [v.signed() for v in self.prepares]}


@dataclass(frozen=True)
class ViewChangeMessage:
    """VIEW-CHANGE to ``view``: the sender's last executed height (with its commit certificate) and
    its highest-view prepared certificate above it."""

    sender: str
    view: int
    executed: int
    executed_cert: dict[str, Any] | None
    prepared: PreparedCert | None
    sig: str
    payload: bytes | None  # the prepared value's payload; absent when embedded in a NEW-VIEW

    def body(self) -> dict[str, Any]:
        return {
            "type": VIEW_CHANGE,
            "from": self.sender,
            "view": self.view,
            "executed": self.executed,
            "executed_cert": self.executed_cert,
            "prepared": None if self.prepared is None else self.prepared.to_json(),
        }

    def signed(self) -> dict[str, Any]:
        return {"body": self.body(), "sig": self.sig}


@dataclass(frozen=True)
class NewViewMessage:
    """NEW-VIEW for ``view`` from its primary: the view changes that justify it and the re-proposal."""

    sender: str
    view: int
    view_changes: tuple[ViewChangeMessage, ...]
    pre_prepare: Vote | None
    sig: str
    payload: bytes | None

    def body(self) -> dict[str, Any]:
        return {
            "type": NEW_VIEW,
            "from": self.sender,
            "view": self.view,
            "view_changes": [vc.signed() for vc in self.view_changes],
            "pre_prepare": None if self.pre_prepare is None else self.pre_prepare.signed(),
        }


@dataclass(frozen=True)
class StatusMessage:
    """"Where I am": asks peers for what the sender misses (decided blocks, the NEW-VIEW, votes)."""

    sender: str
    view: int
    executed: int
    seq: int  # strictly increasing per sender, so an old status is a replay
    waiting: bool  # the sender is in view ``view`` but has not installed it (no NEW-VIEW yet)
    sig: str

    def body(self) -> dict[str, Any]:
        return {"type": STATUS, "from": self.sender, "view": self.view, "executed": self.executed,
                "seq": self.seq, "waiting": self.waiting}


@dataclass(frozen=True)
class DecidedMessage:
    """Decided blocks for a peer that fell behind: commit certificates and their payloads."""

    sender: str
    certs: tuple[dict[str, Any], ...]
    payloads: tuple[bytes, ...]
    more: bool  # the sender holds further decided blocks
    sig: str

    def body(self) -> dict[str, Any]:
        return {"type": DECIDED, "from": self.sender, "certs": list(self.certs), "more": self.more}


Message = VoteMessage | CheckpointMessage | ViewChangeMessage | NewViewMessage | StatusMessage | DecidedMessage

# ---------------------------------------------------------------------------------------------
# Constructors (the honest replica's side)


def vote_body(kind: str, sender: str, view: int, height: int, digest: str) -> dict[str, Any]:
    return {"type": kind, "from": sender, "view": view, "height": height, "digest": digest}


def sign_vote(checker: SignatureChecker, identity: Identity, kind: str, view: int, height: int, digest: str) -> Vote:
    sig = checker.sign(identity, vote_body(kind, identity.name, view, height, digest))
    return Vote(kind, identity.name, view, height, digest, sig)


def encode_vote(vote: Vote, payload: bytes | None = None) -> bytes:
    envelope: dict[str, Any] = vote.signed()
    if vote.kind == PRE_PREPARE:
        if payload is None:
            raise ValueError("a pre-prepare travels with its payload")
        envelope["payload"] = encode_payload(payload)
    return canonical_json(envelope)


def make_checkpoint(checker: SignatureChecker, identity: Identity, height: int, digest: str) -> CheckpointMessage:
    body = {"type": CHECKPOINT, "from": identity.name, "height": height, "digest": digest}
    return CheckpointMessage(identity.name, height, digest, checker.sign(identity, body))


def encode_checkpoint(cp: CheckpointMessage) -> bytes:
    return canonical_json({"body": cp.body(), "sig": cp.sig})


def make_view_change(
    checker: SignatureChecker,
    identity: Identity,
    view: int,
    executed: int,
    executed_cert: dict[str, Any] | None,
    prepared: PreparedCert | None,
    payload: bytes | None,
) -> ViewChangeMessage:
    unsigned = ViewChangeMessage(identity.name, view, executed, executed_cert, prepared, "", payload)
    return ViewChangeMessage(identity.name, view, executed, executed_cert, prepared,
                             checker.sign(identity, unsigned.body()), payload)


def encode_view_change(vc: ViewChangeMessage) -> bytes:
    payload = None if vc.payload is None else encode_payload(vc.payload)
    return canonical_json({"body": vc.body(), "sig": vc.sig, "payload": payload})


def make_new_view(
    checker: SignatureChecker,
    identity: Identity,
    view: int,
    view_changes: Sequence[ViewChangeMessage],
    pre_prepare: Vote | None,
    payload: bytes | None,
) -> NewViewMessage:
    vcs = tuple(ViewChangeMessage(vc.sender, vc.view, vc.executed, vc.executed_cert, vc.prepared, vc.sig, None)
                for vc in view_changes)
    unsigned = NewViewMessage(identity.name, view, vcs, pre_prepare, "", payload)
    return NewViewMessage(identity.name, view, vcs, pre_prepare, checker.sign(identity, unsigned.body()), payload)


def encode_new_view(nv: NewViewMessage) -> bytes:
    payload = None if nv.payload is None else encode_payload(nv.payload)
    return canonical_json({"body": nv.body(), "sig": nv.sig, "payload": payload})


def make_status(checker: SignatureChecker, identity: Identity, view: int, executed: int, seq: int,
                waiting: bool) -> StatusMessage:
    unsigned = StatusMessage(identity.name, view, executed, seq, waiting, "")
    return StatusMessage(identity.name, view, executed, seq, waiting, checker.sign(identity, unsigned.body()))


def encode_status(st: StatusMessage) -> bytes:
    return canonical_json({"body": st.body(), "sig": st.sig})


def make_decided(checker: SignatureChecker, identity: Identity, certs: Sequence[dict[str, Any]],
                 payloads: Sequence[bytes], more: bool) -> DecidedMessage:
    unsigned = DecidedMessage(identity.name, tuple(certs), tuple(payloads), more, "")
    return DecidedMessage(identity.name, tuple(certs), tuple(payloads), more, checker.sign(identity, unsigned.body()))


def encode_decided(dm: DecidedMessage) -> bytes:
    return canonical_json({"body": dm.body(), "sig": dm.sig, "payloads": [encode_payload(p) for p in dm.payloads]})


# ---------------------------------------------------------------------------------------------
# Parser (the network's side): syntax, then sender, then signature


_ENVELOPE_KEYS = {
    PRE_PREPARE: {"body", "sig", "payload"},
    VIEW_CHANGE: {"body", "sig", "payload"},
    NEW_VIEW: {"body", "sig", "payload"},
    DECIDED: {"body", "sig", "payloads"},
}


def parse_certificate_syntax(value: Any, where: str) -> dict[str, Any]:
    """Shape of a commit certificate: ``{"view", "height", "payload_hash", "commits": [[name, sig], ...]}``."""
    cert = expect_object(value, {"view", "height", "payload_hash", "commits"}, where)
    expect_uint(cert["view"], f"{where}.view")
    expect_uint(cert["height"], f"{where}.height", minimum=1)
    expect_hex64(cert["payload_hash"], f"{where}.payload_hash")
    for i, pair in enumerate(expect_list(cert["commits"], f"{where}.commits")):
        if not isinstance(pair, list) or len(pair) != 2:
            raise malformed(f"{where}.commits[{i}]", "expected [name, signature]")
        expect_name(pair[0], f"{where}.commits[{i}][0]")
        expect_sig(pair[1], f"{where}.commits[{i}][1]")
    return cert


def _parse_vote_body(body: dict[str, Any], sig: str, where: str, kinds: tuple[str, ...]) -> Vote:
    expect_object(body, {"type", "from", "view", "height", "digest"}, where)
    return Vote(
        kind=expect_literal(body["type"], kinds, f"{where}.type"),
        sender=expect_name(body["from"], f"{where}.from"),
        view=expect_uint(body["view"], f"{where}.view"),
        height=expect_uint(body["height"], f"{where}.height", minimum=1),
        digest=expect_hex64(body["digest"], f"{where}.digest"),
        sig=sig,
    )


def _parse_signed_vote(value: Any, where: str, kinds: tuple[str, ...]) -> Vote:
    signed = expect_object(value, {"body", "sig"}, where)
    return _parse_vote_body(signed["body"], expect_sig(signed["sig"], f"{where}.sig"), f"{where}.body", kinds)


def _parse_prepared(value: Any, where: str) -> PreparedCert | None:
    if value is None:
        return None
    obj = expect_object(value, {"pre_prepare", "prepares"}, where)
    pre_prepare = _parse_signed_vote(obj["pre_prepare"], f"{where}.pre_prepare", (PRE_PREPARE,))
    prepares = tuple(_parse_signed_vote(v, f"{where}.prepares[{i}]", (PREPARE,))
                     for i, v in enumerate(expect_list(obj["prepares"], f"{where}.prepares")))
    return PreparedCert(pre_prepare, prepares)


def _parse_view_change_body(body: Any, sig: str, payload: bytes | None, where: str) -> ViewChangeMessage:
    expect_object(body, {"type", "from", "view", "executed", "executed_cert", "prepared"}, where)
    expect_literal(body["type"], (VIEW_CHANGE,), f"{where}.type")
    cert = body["executed_cert"]
    return ViewChangeMessage(
        sender=expect_name(body["from"], f"{where}.from"),
        view=expect_uint(body["view"], f"{where}.view", minimum=1),
        executed=expect_uint(body["executed"], f"{where}.executed"),
        executed_cert=None if cert is None else parse_certificate_syntax(cert, f"{where}.executed_cert"),
        prepared=_parse_prepared(body["prepared"], f"{where}.prepared"),
        sig=sig,
        payload=payload,
    )


def _optional_payload(value: Any, where: str) -> bytes | None:
    return None if value is None else expect_payload(value, where)


def _parse_body(kind: str, env: dict[str, Any]) -> Message:
    body, sig = env["body"], expect_sig(env["sig"], "sig")
    if kind in VOTE_KINDS:
        payload = expect_payload(env["payload"], "payload") if kind == PRE_PREPARE else None
        return VoteMessage(_parse_vote_body(body, sig, "body", (kind,)), payload)
    if kind == CHECKPOINT:
        expect_object(body, {"type", "from", "height", "digest"}, "body")
        return CheckpointMessage(expect_name(body["from"], "body.from"),
                                 expect_uint(body["height"], "body.height", minimum=1),
                                 expect_hex64(body["digest"], "body.digest"), sig)
    if kind == VIEW_CHANGE:
        return _parse_view_change_body(body, sig, _optional_payload(env["payload"], "payload"), "body")
    if kind == NEW_VIEW:
        expect_object(body, {"type", "from", "view", "view_changes", "pre_prepare"}, "body")
        vcs = []
        for i, item in enumerate(expect_list(body["view_changes"], "body.view_changes", max_len=1024)):
            signed = expect_object(item, {"body", "sig"}, f"body.view_changes[{i}]")
            vcs.append(_parse_view_change_body(signed["body"], expect_sig(signed["sig"], f"body.view_changes[{i}].sig"),
                                               None, f"body.view_changes[{i}].body"))
        pp = body["pre_prepare"]
        return NewViewMessage(
            sender=expect_name(body["from"], "body.from"),
            view=expect_uint(body["view"], "body.view", minimum=1),
            view_changes=tuple(vcs),
            pre_prepare=None if pp is None else _parse_signed_vote(pp, "body.pre_prepare", (PRE_PREPARE,)),
            sig=sig,
            payload=_optional_payload(env["payload"], "payload"),
        )
    if kind == STATUS:
        expect_object(body, {"type", "from", "view", "executed", "seq", "waiting"}, "body")
        return StatusMessage(expect_name(body["from"], "body.from"), expect_uint(body["view"], "body.view"),
                             expect_uint(body["executed"], "body.executed"),
                             expect_uint(body["seq"], "body.seq", minimum=1),
                             expect_bool(body["waiting"], "body.waiting"), sig)
    # DECIDED
    expect_object(body, {"type", "from", "certs", "more"}, "body")
    certs = tuple(parse_certificate_syntax(c, f"body.certs[{i}]")
                  for i, c in enumerate(expect_list(body["certs"], "body.certs", max_len=1024)))
    payloads = tuple(expect_payload(p, f"payloads[{i}]")
                     for i, p in enumerate(expect_list(env["payloads"], "payloads", max_len=1024)))
    if len(payloads) != len(certs) or not certs:
        raise malformed("payloads", "one payload per certificate, at least one")
    return DecidedMessage(expect_name(body["from"], "body.from"), certs, payloads,
                          expect_bool(body["more"], "body.more"), sig)


def parse_message(
    message: object, validators: Mapping[str, str], limit: int, checker: SignatureChecker
) -> Message:
    """Bytes from the network → a parsed, sender-authenticated message, or ``Rejected``.

    Nested signatures (certificates inside view changes) are left to ``pbft_rules``.
    """
    env = decode_message(message, limit)
    body = env.get("body")
    if not isinstance(body, dict):
        raise malformed("body", "expected an object")
    kind = expect_literal(body.get("type"), KINDS, "body.type")
    expect_object(env, _ENVELOPE_KEYS.get(kind, {"body", "sig"}), "envelope")
    parsed = _parse_body(kind, env)
    address = validators.get(parsed.vote.sender if isinstance(parsed, VoteMessage) else parsed.sender)
    if address is None:
        raise Rejected(Reason.UNKNOWN_SENDER, f"{body.get('from')!r} is not a validator")
    if not checker.verify(address, body, env["sig"]):
        raise Rejected(Reason.BAD_SIGNATURE, f"{kind} from {body.get('from')!r}")
    return parsed
