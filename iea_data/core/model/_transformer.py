"""The structure transformer of P-IEANet's encoder, built in one place (the network and the
checkpoint converter, which needs its parameter names, both use it)."""

from __future__ import annotations

import warnings

from torch import nn

__all__ = ["make_transformer", "D_MODEL", "LN_EPS"]

#: Token width of the structure transformers (= channels of H).
D_MODEL = 9
#: LayerNorm epsilon of the released transformers.
LN_EPS = 1e-5


def make_transformer() -> nn.Transformer:
    """One released-configuration ``nn.Transformer`` (d_model 9, one head, one layer each way)."""
    with warnings.catch_warnings():
        # nn.TransformerEncoder warns that nested tensors need batch_first; irrelevant here.
        warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
        return nn.Transformer(
            d_model=D_MODEL,
            nhead=1,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dim_feedforward=16,
            dropout=0.1,
            layer_norm_eps=LN_EPS,
        )
