"""``bmoe validator --lm lm.json --tokenizer FILE``: the validator of a language model's deployment.

Owns that variant of the validator's start-up (``bmoe lm cluster`` starts it so): read the language model's
settings and tokenizer (one line and exit 2 when they do not read), refuse what such a deployment does not run
(a consensus other than proof of work, the traditional framework), open an ``LMSession`` over the storage nodes and
the network's edges with the enrolled keys, and serve it (:mod:`bmoe.net.validator.lm_service`). The rest of the
command line is the classifier's validator's (:mod:`bmoe.net.validator.command`).
"""

from __future__ import annotations

from bmoe.ledger.keys import load_identity
from bmoe.lm.tokenizer import tokenizer_from_bytes
from bmoe.net.enrolment import load_enrolment
from bmoe.net.http.serve import bind, url_of
from bmoe.net.http.stats import Counters
from bmoe.net.node_setup import SetupError, run_identities
from bmoe.net.validator.lm_service import LMValidatorService
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.service import ValidatorSettings
from bmoe.net.validator.startup import (
    DEFAULT_EDGE_TIMEOUT_S,
    ValidatorArgs,
    object_stores,
    serve_validator,
    write_behind_store,
)
from bmoe.run.config_checks import ConfigError
from bmoe.run.lm.session import LMSession
from bmoe.run.lm.settings_file import read_lm_settings
from bmoe.verify.framework import framework_of


def serve_language_model(args: ValidatorArgs, max_body: int) -> None:
    """A language model's validator: one PoW validator holding an ``LMSession`` over the storage nodes and the
    network's edges (:mod:`bmoe.net.validator.lm_service`)."""
    assert args.lm is not None and args.key and args.enrolled and args.run_dir
    if args.tokenizer is None:
        raise SetupError("--lm needs --tokenizer: the run's tokenizer")
    lm_config = read_lm_settings(args.lm)
    try:
        tokenizer_bytes = args.tokenizer.read_bytes()
        tokenizer = tokenizer_from_bytes(tokenizer_bytes)
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read the language model's tokenizer {args.tokenizer}: {exc}") from None
    config = lm_config.run
    if config.consensus != "pow" or not framework_of(config.framework).keeps_ledger:
        raise SetupError("a language model's deployment runs one B-MoE validator sealing by proof of work for now")
    identity = load_identity(args.key)
    members = load_enrolment(args.enrolled)
    ids = run_identities(config, members, identity, ["validator-0"])
    if args.run_dir.exists() and not args.run_dir.is_dir():
        raise SetupError(f"--run-dir {args.run_dir} exists and is not a directory")
    stores_at = object_stores(args, identity, members)
    try:
        sock = bind(args.host, args.port or 0)
    except OSError as exc:
        raise SetupError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    url, counters = url_of(sock), Counters()
    session_store = write_behind_store(stores_at)
    edges = NetworkEdges(session_store, args.edge_timeout or DEFAULT_EDGE_TIMEOUT_S, counters)
    try:
        args.run_dir.mkdir(parents=True, exist_ok=True)
        session = LMSession(lm_config, tokenizer_bytes, tokenizer.vocab_size, None, None, args.run_dir,
                            store=session_store, gateway=edges, identities=None if ids.seeded else ids)
        service = LMValidatorService(session, edges, session_store, ValidatorSettings(identity, members, url,
                                                                                    max_body=max_body), counters)
    except ConfigError as exc:
        sock.close()
        raise SetupError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    shape = session.model_config
    line = (f"bmoe validator: language model {shape.num_hidden_layers} layers x {shape.num_local_experts} experts, "
            f"listening on {url}, key {identity.address}, run dir {args.run_dir}, head {session.head_hash()}, edge "
            f"timeout {edges.timeout:g} s")
    serve_validator(service, sock, edges, lambda: line, [session_store])
