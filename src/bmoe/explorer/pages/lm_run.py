"""A language model's run: the model's manifest (the trusted object's metadata, named by the chain's gate CID), what
the genesis puts in force, the training loss per round (the ledger's) with the validation loss in nats and bits per
token and the learning rate (the run's ``history.json``), each round's costs, the audit, and ``lm.json``."""

from __future__ import annotations

from typing import Any

from bmoe.explorer.html import Cell, Html, cid_link, join, pairs, row, section, table, tag
from bmoe.explorer.lm_index import Manifest, round_losses
from bmoe.explorer.pages.run import as_text, audit_details, genesis_table
from bmoe.explorer.pages.view import View
from bmoe.explorer.svg import Series, line_chart
from bmoe.run.config import ConfigError
from bmoe.run.lm.config import LMRunConfig

HISTORY = "the run's history.json, not on the ledger"
LATEST = 50  # rounds and validation points the tables list (the newest); the curves show every one


def _manifest(view: View, manifest: Manifest | None, why: str) -> Html:
    genesis_cid = view.index.genesis["gate_cid"]
    objects: list[tuple[str, Cell]] = [("trusted part now (the head's gate CID)", cid_link(view.index.state.gate_cid)),
                                       ("trusted part at the genesis", cid_link(genesis_cid))]
    if manifest is None:
        return pairs([*objects, ("manifest", tag("span", f"unreadable: {why}", class_="bad"))], id_="manifest")
    c = manifest.config
    attention = f"{c.num_attention_heads} heads, {c.num_key_value_heads} key-value heads" + (
        " (grouped-query)" if c.num_key_value_heads < c.num_attention_heads else "")
    slots = view.index.genesis["num_experts"]
    items: list[tuple[str, Cell]] = [
        ("architecture", "MixtralForCausalLM: decoder-only transformer, a sparse MoE block in every layer"),
        ("layers L", c.num_hidden_layers), ("hidden size d", c.hidden_size),
        ("experts per layer N", c.num_local_experts), ("top-K", c.num_experts_per_tok),
        ("expert (SwiGLU) width", c.intermediate_size), ("attention", f"{attention}, head size {c.head_dim}"),
        ("context (tokens)", c.max_position_embeddings), ("vocabulary", c.vocab_size),
        ("tied embeddings", "yes" if c.tie_word_embeddings else "no"), ("RoPE theta", c.rope_theta),
        ("router losses", f"load balance {c.router_aux_loss_coef}, z-loss {c.router_z_loss_coef}"),
        ("ledger slots", f"{slots} = {c.num_hidden_layers} × {c.num_local_experts}"
                         + ("" if slots == c.num_slots else " (the genesis disagrees!)")),
        ("tokenizer CID", tag("span", manifest.tokenizer_cid, class_="mono", id="tokenizer-cid"))]
    return pairs([*objects, *items], id_="manifest")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _points(rows: list[dict[str, Any]], x: str, y: str) -> list[tuple[float, float]]:
    found = [(_number(r.get(x)), _number(r.get(y))) for r in rows]
    return [(a, b) for a, b in found if a is not None and b is not None]


def _curves(view: View, history: dict[str, list[dict[str, Any]]]) -> Html:
    validation = history["validation"]
    loss = line_chart([Series("training", [(float(r), v) for r, v in round_losses(view.index.tasks)]),
                       Series("validation", _points(validation, "step", "loss"))],
                      title="Loss per step (nats per token)", x_label="step (rounds trained)", y_label="loss",
                      id_="loss-curve")
    bits = line_chart([Series("validation", _points(validation, "step", "bits"))],
                      title="Validation loss (bits per token)", x_label="step (rounds trained)", y_label="bits",
                      id_="bits-curve")
    lr = line_chart([Series("learning rate", _points(history["rounds"], "step", "lr"))],
                    title="Learning rate per round", x_label="round", y_label="lr", y_range=(0.0, None),
                    id_="lr-curve")
    note = tag("p", f"The training loss is the one the validators recorded on the ledger; the validation loss (the "
                    f"ledger's model on held-out text) and the learning rate are {HISTORY}.", class_="muted")
    return join([note, row(loss, bits, lr)])


def _rounds(view: View, history: dict[str, list[dict[str, Any]]]) -> Html:
    ledger = dict(round_losses(view.index.tasks))
    columns = ("calls", "accepted", "misbehaviour", "edge_seconds", "edge_total_seconds", "bytes", "round_seconds")
    rows = [[r.get("step"), ledger.get(r["step"]) if isinstance(r.get("step"), int) else None, _number(r.get("lr")),
             *(_number(r.get(name)) for name in columns)] for r in history["rounds"][-LATEST:]]
    validation = [[r.get("step"), _number(r.get("loss")), _number(r.get("bits"))]
                  for r in history["validation"][-LATEST:]]
    return row(table(("round", "loss (ledger)", "lr", "expert calls", "accepted", "misbehaviour records",
                      "busiest edge s", "all edges s", "bytes", "round s"), rows, id_="rounds"),
               table(("step", "validation loss (nats)", "bits per token"), validation, id_="validation"))


def _settings(settings: LMRunConfig | None) -> Html:
    if settings is None:
        return tag("p", "No readable lm.json.", class_="muted")
    tables = settings.to_dict()
    return row(*(table((f"{name} setting", "value"), [[key, as_text(value)] for key, value in
                                                       sorted(tables[name].items())], id_=f"{name}-settings")
                 for name in ("lm", "run")))


def run(view: View) -> Html:
    assert view.lm is not None
    manifest, why = view.lm_manifest
    history = view.lm.history()
    try:
        settings: LMRunConfig | None = view.lm.settings()
    except ConfigError:
        settings = None
    body = join([section("Model (the trusted object's manifest)", _manifest(view, manifest, why)),
                 section("Curves", _curves(view, history)),
                 section(f"Rounds (the latest {LATEST}; {HISTORY})", _rounds(view, history)),
                 section("Audit", audit_details(view.report)),
                 section("In force (the genesis)", genesis_table(view)),
                 section("Settings (lm.json)", _settings(settings))])
    return view.page("Run (language model)", body, active="/run")
