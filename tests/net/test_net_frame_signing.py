"""Frames signed by their head: the signature covers the head (which lists each object's CID and size), every object
is checked against its CID by the frame's reader, so a tampered head is refused by the signature check and a
tampered object by the CID check, on requests (the guard, then the route) and replies (the client) alike."""

from __future__ import annotations

import hashlib

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from bmoe.net.frames import FRAME_MEDIA_TYPE, FrameError, decode_frame, encode_frame, frame_digest, head_length
from bmoe.net.http.auth import check_response, content_digest, sign_request
from bmoe.net.http.frame_response import FrameResponse
from bmoe.net.http.guard import SignedRequestGuard
from bmoe.net.http.stats import Counters
from bmoe.storage.cid import cid_of
from tests.net.cluster import identity

CLIENT, NODE = identity("frame-client"), identity("frame-node")
WEIGHTS, ROWS = b"w" * 300_000, b"routed rows"  # one object above a CID chunk (a dag-pb root), one raw leaf
OBJECTS = {cid_of(WEIGHTS): WEIGHTS, cid_of(ROWS): ROWS}
HEADER = {"work_id": 7, "phase": "result"}


def _tamper_object(frame: bytes) -> bytes:
    """The same frame with one byte of an object changed (same length: the head still describes it)."""
    at = frame.index(ROWS)
    return frame[:at] + b"R" + frame[at + 1:]


def _tamper_head(frame: bytes) -> bytes:
    return frame.replace(b'"work_id":7', b'"work_id":8')


def test_a_frame_digest_covers_its_head_and_not_the_bytes_after_it() -> None:
    frame = encode_frame(HEADER, OBJECTS)
    end = head_length(frame)
    assert end is not None and frame[end:] == WEIGHTS + ROWS
    digest = frame_digest(frame)
    assert digest == frame_digest(frame[:end]) == frame_digest(_tamper_object(frame))
    assert digest != frame_digest(_tamper_head(frame))
    assert digest != hashlib.sha256(frame[:end]).hexdigest()  # domain-separated from a body's own hash
    assert content_digest(frame, FRAME_MEDIA_TYPE) == digest
    # any other content type, or a body that does not start with a whole head, is hashed whole
    assert content_digest(frame, "application/json") == hashlib.sha256(frame).hexdigest()
    assert content_digest(frame[:20], FRAME_MEDIA_TYPE) == hashlib.sha256(frame[:20]).hexdigest()
    assert frame_digest(b"{}") is None and head_length(frame[:end - 1]) is None


def _node() -> TestClient:
    """A signed node with a frame route each way: GET pushes a frame (in parts), POST reads one."""

    async def push(request: Request) -> Response:
        return FrameResponse(HEADER, OBJECTS)

    async def take(request: Request) -> Response:
        try:
            header, objects = decode_frame(await request.body())
        except FrameError as exc:
            return JSONResponse({"error": str(exc), "reason": "malformed_frame"}, status_code=400)
        return JSONResponse({"header": header, "objects": sorted(objects)})

    app = Starlette(routes=[Route("/frame", push, methods=["GET"]), Route("/frame", take, methods=["POST"])])
    guarded = SignedRequestGuard(app, identity=NODE, enrolled=[CLIENT.address], counters=Counters())
    return TestClient(guarded, base_url="http://node")


NONCE = "ab" * 16


def _pushed() -> tuple[dict[str, str], bytes]:
    """A signed GET of the node's frame: the reply's headers and body (starlette's test client is not httpx's, so
    the request is signed and the reply checked here as :class:`~bmoe.net.http.auth.SignedAuth` does)."""
    with _node() as node:
        reply = node.get("/frame", headers=sign_request(CLIENT, "GET", "/frame", "", "node", b"", nonce=NONCE))
    assert reply.status_code == 200
    return dict(reply.headers), reply.content


def test_a_pushed_frame_arrives_whole_signed_by_its_head() -> None:
    headers, body = _pushed()
    assert headers["content-type"] == FRAME_MEDIA_TYPE
    assert int(headers["content-length"]) == len(body) and body == encode_frame(HEADER, OBJECTS)
    assert check_response(200, headers, body, NONCE, [NODE.address]) is None
    assert "not a trusted key" in str(check_response(200, headers, body, NONCE, [CLIENT.address]))
    assert decode_frame(body) == (HEADER, OBJECTS)


def test_a_reply_with_a_tampered_head_fails_its_signature_and_one_with_a_tampered_object_its_cid() -> None:
    headers, body = _pushed()
    assert "does not match" in str(check_response(200, headers, _tamper_head(body), NONCE, [NODE.address]))
    retyped = {**headers, "content-type": "application/json"}  # the type is not signed: the digest then differs
    assert "does not match" in str(check_response(200, retyped, body, NONCE, [NODE.address]))
    tampered = _tamper_object(body)
    assert check_response(200, headers, tampered, NONCE, [NODE.address]) is None  # the head is intact...
    with pytest.raises(FrameError, match="do not match the CID"):
        decode_frame(tampered)  # ...and its reader refuses the object


def _post(node: TestClient, signed: bytes, sent: bytes, content_type: str = FRAME_MEDIA_TYPE) -> tuple[int, dict]:
    headers = sign_request(CLIENT, "POST", "/frame", "", "node", signed, content_type=FRAME_MEDIA_TYPE)
    reply = node.post("/frame", content=sent, headers={**headers, "content-type": content_type})
    return reply.status_code, reply.json()


def test_a_request_frame_is_admitted_by_its_head_and_its_objects_checked_by_the_route() -> None:
    frame = encode_frame(HEADER, OBJECTS)
    with _node() as node:
        assert _post(node, frame, frame) == (200, {"header": HEADER, "objects": sorted(OBJECTS)})
        status, body = _post(node, frame, _tamper_head(frame))
        assert (status, body["reason"]) == (401, "body_mismatch")
        status, body = _post(node, frame, frame, content_type="application/json")
        assert (status, body["reason"]) == (401, "body_mismatch")
        status, body = _post(node, frame, _tamper_object(frame))
        assert (status, body["reason"]) == (400, "malformed_frame") and "do not match the CID" in body["error"]
