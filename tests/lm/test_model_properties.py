"""What the MoE transformer promises whatever its weights: dropless routing (a token's logits do not depend on the
other sequences of its batch), causality, grouped-query attention as shared key/value heads, tied embeddings
as one tensor."""

from __future__ import annotations

import torch

from bmoe.lm.model import MoETransformer
from tests.lm.tiny_models import random_tokens, tiny_model

ATOL = 1e-5  # float32: the same token may meet its experts in a different group of rows, so summation order differs


def logits(model: MoETransformer, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).logits  # (B, T, V)


def test_a_sequences_logits_do_not_depend_on_the_other_sequences_of_its_batch() -> None:
    model = tiny_model()
    tokens = random_tokens(model.config, 6, 16, seed=1)
    together = logits(model, tokens)
    for row in range(tokens.shape[0]):
        torch.testing.assert_close(together[row], logits(model, tokens[row:row + 1])[0], rtol=0, atol=ATOL)
    reordered = torch.flip(tokens, dims=[0])
    torch.testing.assert_close(logits(model, reordered), torch.flip(together, dims=[0]), rtol=0, atol=ATOL)


def test_changing_a_later_token_leaves_every_earlier_position_unchanged() -> None:
    model = tiny_model()
    tokens = random_tokens(model.config, 2, 16, seed=2)
    changed = tokens.clone()
    changed[:, 9] = (changed[:, 9] + 1) % model.config.vocab_size
    before, after = logits(model, tokens), logits(model, changed)
    torch.testing.assert_close(after[:, :9], before[:, :9], rtol=0, atol=ATOL)
    assert (after[:, 9:] - before[:, 9:]).abs().amax(dim=-1).min() > 1e-3  # every later position sees the change


def test_grouped_query_attention_equals_full_attention_with_each_key_value_head_copied_to_its_group() -> None:
    grouped = tiny_model(num_attention_heads=4, num_key_value_heads=2)
    assert grouped.layers[0].self_attn.k_proj.weight.shape == (2 * grouped.config.head_dim, 32)  # (Hkv*hd, d)
    full = tiny_model(num_attention_heads=4, num_key_value_heads=4)
    group, head_dim = 2, grouped.config.head_dim
    state = grouped.state_dict()
    for name, tensor in list(state.items()):
        if name.endswith(("k_proj.weight", "v_proj.weight")):  # (Hkv*hd, d) -> (H*hd, d): head h reads head h // 2
            state[name] = tensor.view(-1, head_dim, 32).repeat_interleave(group, dim=0).reshape(-1, 32)
    full.load_state_dict(state)
    tokens = random_tokens(grouped.config, 2, 16, seed=3)
    torch.testing.assert_close(logits(grouped, tokens), logits(full, tokens), rtol=0, atol=ATOL)
    other = logits(tiny_model(num_attention_heads=4, num_key_value_heads=4), tokens)
    assert not torch.allclose(other, logits(grouped, tokens), atol=1e-3)  # other weights, other logits


def test_tied_embeddings_are_one_tensor_that_both_ends_of_the_model_read() -> None:
    model = tiny_model(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in tiny_model().parameters()) - 50 * 32
    tokens = random_tokens(model.config, 1, 8, seed=4)
    before = logits(model, tokens)
    with torch.no_grad():
        model.model.embed_tokens.weight[tokens[0, -1]] += 1.0  # one row, changed once, read twice
    assert not torch.allclose(logits(model, tokens), before)
