"""P-IEANet, as released with the NeurIPS 2024 paper, with a reference and a fast path.

The network (described in ``shared/reference/p-ieanet-official/ARCHITECTURE.md``):

- a 2x2 stride-2 "wavelet" convolution stage whose three high-frequency outputs form
  ``H`` (N, 9, 128, 128);
- branch A, an FFA-Net-style network on the full 256x256 image -> (N, 1, 256, 256);
- branch B, a "structure encoder" on ``H``: nine neighbour-difference inputs, each
  through a 2x2 convolution and through an ``nn.Transformer`` -> (N, 3, 128, 128);
- the merge: branch B resized to 256x256, three 3x3 convolutions with ReLU, added to A.

Two implementations of one set of parameters:

``"reference"``
    The released order of operations in NCHW, each image fed as a pair of identical
    copies through real ``nn.Transformer`` modules whose sequence axis is the batch
    axis (exactly what the released inference script does). Slow; the yardstick.
``"fast"``
    The same function computed per image: the transformer in its per-token form
    (attention over identical keys is the value projection followed by the output
    projection), the nine encoder branches fused into grouped / batched operations,
    constant linear maps folded together, channels-last convolutions for the FFA
    branch and in-place element-wise work when no gradient is recorded.

Inference on CPU (autograd off) runs the FFA branch through oneDNN convolutions with
fused post-ops and weights reordered once into oneDNN's blocked layout (cached per
convolution, refreshed when a weight changes), one sub-batch of
:attr:`PIEANet.inference_chunk` images at a time: the activations of a whole batch
(8 x 64 x 256 x 256 floats, 128 MiB each) are far larger than the caches, and batch 8
ran 20 % slower per image than batch 1 before. Under ``torch.autocast("cpu",
dtype=torch.bfloat16)`` on a CPU with native bf16 (AMX / AVX512-BF16) the branch runs
explicitly in bfloat16 with bf16 weights (oneDNN's AMX kernels); the structure branch,
the channel-attention weights and the last two convolutions stay float32.
"""

from __future__ import annotations

import functools
import os
import weakref
from contextlib import nullcontext
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._boundary import official_to_residual, validate_batch
from ._convert import MapLocation, load_official_state_dict
from ._transformer import D_MODEL as _D_MODEL
from ._transformer import LN_EPS as _LN_EPS
from ._transformer import make_transformer as _make_transformer

__all__ = ["PIEANet", "Branches", "IMPLS"]

#: Implementations selectable with ``PIEANet(impl=...)``.
IMPLS = ("fast", "reference")

_N_BRANCH = 9  # D0 = H and the eight neighbour differences
_FFA_CH = 64

# (row start, col start) of the shifted term of D1..D8 inside the one-pixel-padded frame:
# the released (row slice, col slice) pairs 1:(0:-2, 1:-1) 2:(2:, 1:-1) 3:(1:-1, 0:-2)
# 4:(1:-1, 2:) 5:(0:-2, 0:-2) 6:(2:, 0:-2) 7:(0:-2, 2:) 8:(2:, 2:).
_OFFSETS: tuple[tuple[int, int], ...] = (
    (0, 1),
    (2, 1),
    (1, 0),
    (1, 2),
    (0, 0),
    (2, 0),
    (0, 2),
    (2, 2),
)


class Branches(NamedTuple):
    """The two intermediate branches of P-IEANet, in the released (official) sign.

    Attributes
    ----------
    ffa : Tensor
        Branch A, float32 (N, 1, 256, 256).
    structure : Tensor
        Branch B before the merge, float32 (N, 3, 128, 128).
    """

    ffa: Tensor
    structure: Tensor


# --------------------------------------------------------------------------- modules


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class _Exec(NamedTuple):
    """How the fast path may compute.

    ``inplace``: no autograd, temporaries may be overwritten. ``fused``: oneDNN
    convolutions with fused post-ops and prepacked weights. ``dtype``: the FFA branch's
    compute dtype on the fused path (float32, or bfloat16 under CPU bf16 autocast on a
    CPU with native bf16).
    """

    inplace: bool
    fused: bool
    dtype: torch.dtype = torch.float32

    @staticmethod
    def for_input(x: Tensor) -> _Exec:
        inplace = not torch.is_grad_enabled()
        cpu = inplace and x.device.type == "cpu" and x.dtype == torch.float32
        if cpu and torch.is_autocast_enabled("cpu"):
            if torch.get_autocast_dtype("cpu") == torch.bfloat16 and onednn_bf16_works():
                return _Exec(inplace, True, torch.bfloat16)
            return _Exec(inplace, False)
        return _Exec(inplace, cpu and _onednn_fusion_works())


@functools.cache
def _onednn_fusion_works() -> bool:
    """Whether oneDNN convolutions with fused post-ops can be used (checked once).

    They are the kernels ``torch.compile`` uses on CPU (``torch.ops.mkldnn``), not a
    public API: a tiny self-test against ``F.conv2d`` guards against a changed
    signature or behaviour, and any failure falls back to plain operations.
    """
    ops = torch.ops.mkldnn
    if not (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_convolution_pointwise")
        and hasattr(ops, "_convolution_pointwise_")
    ):
        return False
    geometry = ([1, 1], [1, 1], [1, 1], 1)
    try:
        with torch.inference_mode():
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(1, 8, 6, 5, generator=gen).contiguous(memory_format=torch.channels_last)
            w, b = torch.rand(8, 8, 3, 3, generator=gen) - 0.5, torch.rand(8, generator=gen)
            ref = F.conv2d(x, w, b, padding=1)
            relu = ops._convolution_pointwise(x, w, b, *geometry, "relu", [], "")
            sigmoid = ops._convolution_pointwise(x, w, b, *geometry, "sigmoid", [], "")
            add = ops._convolution_pointwise.binary(x, x, w, b, *geometry, "add", None, None, [], None)
            into = x.clone()
            ops._convolution_pointwise_.binary(into, x, w, b, *geometry, "add", None, None, [], None)
        return all(
            torch.allclose(got, want, atol=1e-5)
            for got, want in ((relu, ref.relu()), (sigmoid, ref.sigmoid()), (add, ref + x), (into, ref + x))
        )
    except Exception:
        return False


def bf16_cpu_native() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX), per oneDNN."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


@functools.cache
def onednn_bf16_works() -> bool:
    """Whether the bfloat16 fused path can be used: native bf16 and a passing self-test.

    The self-test runs a prepacked bf16 convolution against float32 ``F.conv2d`` on a
    tiny input (relative error within bf16's 2**-7 rounding, with margin).
    """
    if not (_onednn_fusion_works() and bf16_cpu_native()):
        return False
    try:
        conv = nn.Conv2d(8, 8, 3, padding=1)
        with torch.inference_mode(), torch.autocast("cpu", enabled=False):
            gen = torch.Generator().manual_seed(0)
            x = torch.rand(1, 8, 6, 5, generator=gen).contiguous(memory_format=torch.channels_last)
            ref = conv(x)
            got = _conv(conv, x.bfloat16(), _Exec(True, True, torch.bfloat16)).float()
        return bool((got - ref).abs().max() <= 0.05 * ref.abs().max())
    except Exception:
        return False


# conv module -> {(dtype, version, data_ptr): (packed weight, bias)}; weak, so no leak
_PACKED: weakref.WeakKeyDictionary[nn.Conv2d, dict[tuple, tuple[Tensor, Tensor]]] = weakref.WeakKeyDictionary()


def _packed(conv: nn.Conv2d, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``conv``'s weight in oneDNN's blocked layout and its bias, in ``dtype`` (cached).

    Reordering a 64x64x3x3 weight costs about as much as a fifth of the convolution
    itself at 256x256 (bf16), and ``F.conv2d`` redoes it on every call. The cache key
    holds the weight's version counter and storage, so an updated weight is repacked.
    """
    w, bias = conv.weight, conv.bias
    assert bias is not None  # every convolution of the network has a bias
    key = (dtype, _version(w), w.data_ptr(), _version(bias), bias.data_ptr())
    entry = _PACKED.setdefault(conv, {})
    hit = entry.get(key)
    if hit is None:
        entry.clear()
        shape = [1, conv.in_channels, 32, 32]
        packed = torch._C._nn.mkldnn_reorder_conv2d_weight(  # type: ignore[call-arg]  # stubs lack input_size
            w.detach().to(dtype).to_mkldnn(),
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            conv.groups,
            shape,
        )
        hit = entry[key] = (packed, bias.detach().to(dtype))
    return hit


def _version(t: Tensor) -> int:
    """The version counter of ``t`` (-1 for inference tensors, which have none)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def _conv(conv: nn.Conv2d, x: Tensor, mode: _Exec, act: str = "none") -> Tensor:
    """``act(conv(x))``, with ``act`` in {"none", "relu", "sigmoid"}; on the fused path
    with prepacked weights in ``mode.dtype`` (``x`` must then have that dtype)."""
    if mode.fused:
        w, b = _packed(conv, mode.dtype)
        return torch.ops.mkldnn._convolution_pointwise(
            x,
            w,
            b,
            conv.padding,
            conv.stride,
            conv.dilation,
            conv.groups,
            act,
            [],
            "",
        )
    y = conv(x)
    if act == "none":
        return y
    if act == "relu":
        return y.relu_() if mode.inplace else torch.relu(y)
    return y.sigmoid_() if mode.inplace else torch.sigmoid(y)


def _conv_act(conv: nn.Conv2d, x: Tensor, act: str, mode: _Exec) -> Tensor:
    """``act(conv(x))`` for ``act`` in {"relu", "sigmoid"}."""
    if mode.fused:
        return _conv(conv, x, mode, act)
    y = conv(x)
    if act == "relu":
        return y.relu_() if mode.inplace else torch.relu(y)
    return y.sigmoid_() if mode.inplace else torch.sigmoid(y)


def _conv_add(conv: nn.Conv2d, x: Tensor, other: Tensor, mode: _Exec, *, into_other: bool) -> Tensor:
    """``conv(x) + other``; with ``into_other`` the sum overwrites ``other`` (no allocation)."""
    w, b = _packed(conv, mode.dtype) if mode.fused else (conv.weight, conv.bias)
    args: tuple[Any, ...] = (w, b, conv.padding, conv.stride, conv.dilation, conv.groups, "add", None, None, [], None)
    if mode.fused and into_other:
        return torch.ops.mkldnn._convolution_pointwise_.binary(other, x, *args)
    if mode.fused:
        return torch.ops.mkldnn._convolution_pointwise.binary(x, other, *args)
    y = conv(x)
    return y.add_(other) if mode.inplace else y + other


class _ChannelAttention(nn.Module):
    """Global average pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid -> (N, C, 1, 1)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def weights_from_mean(self, mean: Tensor) -> Tensor:
        return torch.sigmoid(self.expand(torch.relu(self.reduce(mean))))

    def forward(self, x: Tensor) -> Tensor:
        return self.weights_from_mean(x.mean((2, 3), keepdim=True))

    def forward_fast(self, x: Tensor) -> Tensor:
        """As :meth:`forward`, the mean and 1x1 convolutions in float32, result in ``x.dtype``."""
        return self.weights_from_mean(x.mean((2, 3), keepdim=True, dtype=torch.float32)).to(x.dtype)


class _PixelAttention(nn.Module):
    """1x1 reduce, ReLU, 1x1 to one channel, sigmoid -> (N, 1, H, W)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.expand(torch.relu(self.reduce(x))))

    def forward_fast(self, x: Tensor, mode: _Exec) -> Tensor:
        return _conv_act(self.expand, _conv_act(self.reduce, x, "relu", mode), "sigmoid", mode)


class _FFABlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = _conv3x3(ch, ch)
        self.conv2 = _conv3x3(ch, ch)
        self.ca = _ChannelAttention(ch, ch // 8)
        self.pa = _PixelAttention(ch, ch // 8)

    def forward_reference(self, x: Tensor) -> Tensor:
        res = torch.relu(self.conv1(x))
        res = res + x
        res = self.conv2(res)
        res = res * self.ca(res)
        res = res * self.pa(res)
        return res + x

    def forward_fast(self, x: Tensor, mode: _Exec, *, reuse_input: bool) -> Tensor:
        """As :meth:`forward_reference`; ``reuse_input`` lets the result overwrite ``x``."""
        r = _conv_act(self.conv1, x, "relu", mode)
        r = r.add_(x) if mode.inplace else r + x
        r = _conv(self.conv2, r, mode)
        ca = self.ca.forward_fast(r) if mode.fused else self.ca(r)
        r = r.mul_(ca) if mode.inplace else r * ca
        pa = self.pa.forward_fast(r, mode)
        if not mode.inplace:
            return torch.addcmul(x, r, pa)
        # x + r * pa, written over x when the caller allows it, else over r (no allocation)
        return x.addcmul_(r, pa) if reuse_input else torch.addcmul(x, r, pa, out=r)


class _FFAGroup(nn.Module):
    def __init__(self, ch: int, n_blocks: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(_FFABlock(ch) for _ in range(n_blocks))
        self.conv = _conv3x3(ch, ch)

    def forward_reference(self, x: Tensor) -> Tensor:
        res = x
        for block in cast("list[_FFABlock]", self.blocks):
            res = block.forward_reference(res)
        return self.conv(res) + x

    def forward_fast(self, x: Tensor, mode: _Exec, *, reuse_input: bool) -> Tensor:
        res = x
        for i, block in enumerate(cast("list[_FFABlock]", self.blocks)):
            # x is needed for the group's residual; later blocks' inputs are temporaries.
            res = block.forward_fast(res, mode, reuse_input=i > 0)
        return _conv_add(self.conv, res, x, mode, into_other=reuse_input and mode.inplace)


class _FFA(nn.Module):
    """Branch A: feature-fusion-attention network on the 256x256 RGB input."""

    def __init__(self, ch: int = _FFA_CH, n_groups: int = 3):
        super().__init__()
        self.head = _conv3x3(3, ch)
        self.groups = nn.ModuleList(_FFAGroup(ch) for _ in range(n_groups))
        self.fuse_ca = _ChannelAttention(ch * n_groups, 4)
        self.fuse_pa = _PixelAttention(ch, ch // 8)
        self.tail = nn.Sequential(_conv3x3(ch, ch), _conv3x3(ch, 1))
        self.out = _conv3x3(3, 1)

    def forward_reference(self, x: Tensor) -> Tensor:
        feat = self.head(x)
        outs = []
        for group in cast("list[_FFAGroup]", self.groups):
            feat = group.forward_reference(feat)
            outs.append(feat)
        w = self.fuse_ca(torch.cat(outs, 1))
        w = w.view(-1, len(outs), _FFA_CH)[:, :, :, None, None]
        out = w[:, 0] * outs[0]
        for i in range(1, len(outs)):
            out = out + w[:, i] * outs[i]
        out = out * self.fuse_pa(out)
        return self.out(self.tail(out) + x)

    def forward_fast(self, x: Tensor, mode: _Exec) -> Tensor:
        """Channels-last, in place where ``mode`` allows; same function as the reference."""
        x = x.contiguous(memory_format=torch.channels_last)
        feat = _conv(self.head, x.to(mode.dtype) if mode.fused else x, mode)
        outs = []
        for i, group in enumerate(cast("list[_FFAGroup]", self.groups)):
            # The head's output is needed by group 1 only; group outputs feed the fusion.
            feat = group.forward_fast(feat, mode, reuse_input=i == 0)
            outs.append(feat)
        # The mean of the 192-channel concatenation is the concatenation of the means.
        mean = torch.cat([o.mean((2, 3), keepdim=True, dtype=torch.float32) for o in outs], 1)
        w = self.fuse_ca.weights_from_mean(mean).to(outs[0].dtype).view(-1, len(outs), _FFA_CH, 1, 1)
        out = outs[0].mul_(w[:, 0]) if mode.inplace else outs[0] * w[:, 0]
        for i in range(1, len(outs)):
            out = out.addcmul_(outs[i], w[:, i]) if mode.inplace else torch.addcmul(out, outs[i], w[:, i])
        pa = self.fuse_pa.forward_fast(out, mode)
        out = out.mul_(pa) if mode.inplace else out * pa
        if not mode.fused:
            return self.out(self.tail(out) + x)
        tail0, tail1 = cast("tuple[nn.Conv2d, nn.Conv2d]", (self.tail[0], self.tail[1]))
        tail = _conv(tail1, _conv(tail0, out, mode), mode).float()
        # the last 3->1 convolution reads the float32 input: kept in float32
        return _conv(self.out, tail + x, mode._replace(dtype=torch.float32))


def _padded_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """The released 2x2 "same" convolution: one zero row on top, one zero column left."""
    return conv(F.pad(x, (1, 0, 1, 0)))


def _neighbour_differences(h: Tensor) -> list[Tensor]:
    """D0..D8 exactly as released: slices, subtraction, default ``nearest`` resize."""
    size = h.shape[-2:]
    centre = h[:, :, 1:-1, 1:-1]
    rows, cols = h.shape[-2] - 2, h.shape[-1] - 2
    out = [h]
    for r0, c0 in _OFFSETS:
        diff = centre - h[:, :, r0 : r0 + rows, c0 : c0 + cols]
        out.append(F.interpolate(diff, size=size, mode="nearest"))
    return out


def _stacked_neighbour_differences(h: Tensor) -> Tensor:
    """D0..D8 stacked branch-major, (N, 9 * C, h, w): the released slices and default
    ``nearest`` resize, done as one resize of the eight differences stacked."""
    n, c, hh, ww = h.shape
    centre = h[:, :, 1:-1, 1:-1]
    diffs = torch.stack([centre - h[:, :, r0 : r0 + hh - 2, c0 : c0 + ww - 2] for r0, c0 in _OFFSETS], 1)
    diffs = F.interpolate(diffs.view(n, len(_OFFSETS) * c, hh - 2, ww - 2), size=(hh, ww), mode="nearest")
    return torch.cat([h, diffs], 1)


def _layer_norm_features(x: Tensor, weight: Tensor | None, bias: Tensor | None, *, inplace: bool) -> Tensor:
    """LayerNorm over axis -2 of feature-major tokens (..., 9, T), per-branch affine.

    Two-pass (mean, then variance of the centred values), vectorised along the tokens.
    ``inplace`` overwrites ``x`` (only when autograd is off and ``x`` is a temporary).
    """
    mean = x.mean(-2, keepdim=True)
    if inplace:
        centred = x.sub_(mean)
        var = torch.mul(centred, centred).mean(-2, keepdim=True)
        out = centred.mul_(var.add_(_LN_EPS).rsqrt_())
        return out if weight is None or bias is None else torch.addcmul(bias, out, weight, out=out)
    centred = x - mean
    out = centred * torch.rsqrt((centred * centred).mean(-2, keepdim=True) + _LN_EPS)
    return out if weight is None or bias is None else torch.addcmul(bias, out, weight)


class _StructureEncoder(nn.Module):
    """Branch B: nine difference inputs, convolutions and transformers, fused to 3 channels."""

    def __init__(self):
        super().__init__()
        ch = _D_MODEL
        self.conv = nn.ModuleList(nn.Conv2d(ch, 3, 2) for _ in range(_N_BRANCH))
        self.transformer = nn.ModuleList(_make_transformer() for _ in range(_N_BRANCH))
        self.proj = nn.ModuleList(nn.Conv2d(ch, 3, 1) for _ in range(_N_BRANCH))
        self.fusion = nn.ModuleList(nn.Conv2d(6, 3, 2) for _ in range(_N_BRANCH))

    # -- reference -------------------------------------------------------------------
    def forward_reference(self, h: Tensor) -> Tensor:
        """Released computation; the batch axis of ``h`` is the transformers' sequence axis."""
        fused = []
        for k, d in enumerate(_neighbour_differences(h)):
            a = _padded_conv(self.conv[k], d)
            tokens = d.reshape(d.shape[0], -1, _D_MODEL)  # (S = images, B = positions, E = 9)
            t = self.transformer[k](tokens, tokens)
            b = self.proj[k](t.reshape(d.shape))
            fused.append(_padded_conv(self.fusion[k], torch.cat([a, b], 1)))
        rest = fused[1]
        for f in fused[2:]:
            rest = rest + f
        return fused[0] + rest

    # -- fast ------------------------------------------------------------------------
    def _folded(self) -> dict[str, Tensor]:
        """Stack the nine branches' parameters and fold constant linear maps.

        Attention over a sequence of identical keys is uniform, so an attention block is
        ``out_proj(v_proj(value_input))``: one 9x9 matrix ``Wo @ Wv`` and one bias. The
        residual ``x + A x`` becomes ``(I + A) x``, and the encoder's final LayerNorm
        affine is folded into the decoder's cross-attention matrix. Matrices are
        (9 branches, out, in); vectors (9 branches, d, 1), for feature-major tokens.
        """
        eye = torch.eye(_D_MODEL, dtype=self.conv[0].weight.dtype, device=self.conv[0].weight.device)

        def value_path(mha: nn.MultiheadAttention) -> tuple[Tensor, Tensor]:
            wv = mha.in_proj_weight[2 * _D_MODEL :]  # rows 18-26: the value projection
            bv = mha.in_proj_bias[2 * _D_MODEL :]
            wo, bo = mha.out_proj.weight, mha.out_proj.bias
            return wo @ wv, wo @ bv + bo

        cols: dict[str, list[Tensor]] = {}

        def put(**items: Tensor) -> None:
            for key, value in items.items():
                cols.setdefault(key, []).append(value)

        for tr in self.transformer:
            enc, dec = tr.encoder.layers[0], tr.decoder.layers[0]
            a, ab = value_path(enc.self_attn)
            put(enc_a=eye + a, enc_ab=ab)
            a, ab = value_path(dec.self_attn)
            put(dec_a=eye + a, dec_ab=ab)
            # The cross attention reads LN(x) * g + beta of the encoder stack: fold g, beta.
            c, cb = value_path(dec.multihead_attn)
            put(dec_c=c * tr.encoder.norm.weight, dec_cb=c @ tr.encoder.norm.bias + cb)
            for prefix, layer in (("enc", enc), ("dec", dec)):
                put(
                    **{
                        f"{prefix}_l1": layer.linear1.weight,
                        f"{prefix}_l1b": layer.linear1.bias,
                        f"{prefix}_l2": layer.linear2.weight,
                        f"{prefix}_l2b": layer.linear2.bias,
                    }
                )
            for key, norm in (
                ("enc_n1", enc.norm1),
                ("enc_n2", enc.norm2),
                ("dec_n1", dec.norm1),
                ("dec_n2", dec.norm2),
                ("dec_n3", dec.norm3),
                ("dec_n", tr.decoder.norm),
            ):
                put(**{key: norm.weight, key + "b": norm.bias})
        out = {}
        for key, items in cols.items():
            t = torch.stack(items)  # (9 branches, ...)
            out[key] = t.unsqueeze(-1) if t.dim() == 2 else t
        # Grouped convolutions over the branch-major (N, 81, h, w) stack.
        out["conv_w"] = torch.cat([c.weight for c in self.conv])  # (27, 9, 2, 2)
        out["conv_b"] = torch.cat([c.bias for c in self.conv])
        out["proj_w"] = torch.cat([p.weight for p in self.proj])  # (27, 9, 1, 1)
        out["proj_b"] = torch.cat([p.bias for p in self.proj])
        # The sum of nine 6->3 convolutions of [a_k, b_k] is one 54->3 convolution.
        fw = torch.stack([f.weight for f in self.fusion])  # (9, 3, 6, 2, 2)
        fa = fw[:, :, :3].permute(1, 0, 2, 3, 4).reshape(3, 27, 2, 2)
        fb = fw[:, :, 3:].permute(1, 0, 2, 3, 4).reshape(3, 27, 2, 2)
        out["fusion_w"] = torch.cat([fa, fb], 1)
        out["fusion_b"] = torch.stack([f.bias for f in self.fusion]).sum(0)
        return out

    def forward_fast(self, h: Tensor, *, inplace: bool = False) -> Tensor:
        """Per-image computation (no attention across the batch), (N, 3, h, w).

        ``inplace`` reuses temporaries; pass it only when autograd is off.
        """
        p = self._folded()
        n, c, hh, ww = h.shape
        stack = _stacked_neighbour_differences(h)  # (N, 81, h, w), branch-major
        a = F.conv2d(F.pad(stack, (1, 0, 1, 0)), p["conv_w"], p["conv_b"], groups=_N_BRANCH)

        # Each branch's (9, h, w) memory read as h*w tokens of 9 numbers (the released
        # reshape), then stored feature-major (N, 9 branches, 9, T) so every op below is
        # vectorised along the tokens.
        z = stack.view(n, _N_BRANCH, -1, _D_MODEL).transpose(-1, -2).contiguous()

        def linear(w: str, t: Tensor) -> Tensor:
            y = torch.matmul(p[w], t)
            return y.add_(p[w + "b"]) if inplace else y + p[w + "b"]

        def add(a: Tensor, b: Tensor) -> Tensor:
            return a.add_(b) if inplace else a + b

        def ffn(prefix: str, t: Tensor) -> Tensor:
            hidden = linear(f"{prefix}_l1", t)
            return linear(f"{prefix}_l2", hidden.relu_() if inplace else torch.relu(hidden))

        def ln(t: Tensor, key: str | None = None) -> Tensor:
            w, b = (p[key], p[key + "b"]) if key else (None, None)
            return _layer_norm_features(t, w, b, inplace=inplace)

        x = ln(linear("enc_a", z), "enc_n1")
        x = ln(add(ffn("enc", x), x), "enc_n2")
        mem = ln(x)  # the encoder norm's affine is folded into dec_c / dec_cb
        y = ln(linear("dec_a", z), "dec_n1")
        y = ln(add(linear("dec_c", mem), y), "dec_n2")
        y = ln(add(ffn("dec", y), y), "dec_n3")
        y = ln(y, "dec_n")

        y = y.transpose(-1, -2).reshape(n, _N_BRANCH * c, hh, ww)  # back to the released layout
        b = F.conv2d(y, p["proj_w"], p["proj_b"], groups=_N_BRANCH)
        return F.conv2d(F.pad(torch.cat([a, b], 1), (1, 0, 1, 0)), p["fusion_w"], p["fusion_b"])


# --------------------------------------------------------------------------- network


class PIEANet(nn.Module):
    """P-IEANet (He et al., NeurIPS 2024), the released simplified network.

    Maps an RGB image to a per-pixel exposure residual. Parameters are those of the
    released checkpoint (load with :meth:`from_official`); the state-dict key names are
    this project's, converted from the release by ``_convert_official``.

    Parameters
    ----------
    impl : {"fast", "reference"}, optional
        Which computation :meth:`forward` uses (see the module docstring). Both give the
        released outputs to within 1e-4; ``"fast"`` is several times quicker.

    Notes
    -----
    Input float32 (N, 3, 256, 256) RGB in [0, 1]; :meth:`forward` returns the residual
    ``test - ideal`` (N, 1, 256, 256), the project's sign: positive where the photo is
    brighter than ideal. :meth:`forward_official` returns the released sign.

    The released code lets the transformers' attention run across the images of a batch
    (the sequence axis is the batch axis), so its output for one image depends on its
    batch-mates; its inference script feeds every image as a pair of identical copies.
    Both paths here reproduce that pair computation for every image independently.
    The gradient flows through both paths; in-place work is used only when autograd is
    off (``torch.no_grad`` / ``torch.inference_mode``).

    References
    ----------
    .. [1] He, Zheng, Ming, Wu, Ma, "Rethinking No-reference Image Exposure Assessment
       from Holism to Pixel: Models, Datasets and Benchmarks", NeurIPS 2024.

    Examples
    --------
    >>> model = PIEANet()  # random weights; PIEANet.from_official() for the released ones
    >>> with torch.inference_mode():
    ...     residual = model(torch.full((1, 3, 256, 256), 0.5))
    >>> residual.shape, residual.dtype
    (torch.Size([1, 1, 256, 256]), torch.float32)
    """

    #: Images per sub-batch on the inference fast path (a positive int; see the module
    #: docstring): a batch is computed as a loop over sub-batches of this size.
    inference_chunk: int = 1

    def __init__(self, *, impl: str = "fast"):
        super().__init__()
        self.impl = impl
        self.dwt_low = nn.Conv2d(3, 3, 2, stride=2)  # computed by the release, result unused
        self.dwt_high = nn.ModuleList(nn.Conv2d(3, 3, 2, stride=2) for _ in range(3))
        self.ffa = _FFA()
        self.structure = _StructureEncoder()
        self.merge = nn.Sequential(_conv3x3(3, 3), nn.ReLU(), _conv3x3(3, 6), nn.ReLU(), _conv3x3(6, 1), nn.ReLU())

    @property
    def impl(self) -> str:
        """The computation :meth:`forward` uses: ``"fast"`` or ``"reference"``."""
        return self._impl

    @impl.setter
    def impl(self, value: str) -> None:
        if value not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {value!r}")
        self._impl = value

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def from_official(
        cls, path: str | os.PathLike | None = None, *, impl: str = "fast", map_location: MapLocation = "cpu"
    ) -> PIEANet:
        """Build the network and load the released checkpoint.

        Parameters
        ----------
        path : str or path-like, optional
            The released ``official_epoch2.pth`` (or a fine-tuned checkpoint with the
            same keys). Default: :func:`iea_data.core.model.official_weights_path`.
        impl : {"fast", "reference"}, optional
            See :class:`PIEANet`.
        map_location : str or torch.device, optional
            Passed to ``torch.load``.

        Returns
        -------
        PIEANet
            In eval mode.

        Raises
        ------
        IeaError
            If the file is not a PyTorch file, or not this checkpoint (the message names
            the first missing, unexpected or wrongly shaped key).
        """
        model = cls(impl=impl)
        model.load_state_dict(load_official_state_dict(path, model, map_location=map_location))
        return model.eval()

    # -- forward ---------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Residual map ``test - ideal`` (project sign).

        Parameters
        ----------
        x : Tensor
            float32 (N, 3, 256, 256) RGB in [0, 1]; validated (see
            :func:`iea_data.core.model.validate_batch`).

        Returns
        -------
        Tensor
            float32 (N, 1, 256, 256), positive where the photo is brighter than ideal.
            The fast path returns float32 under autocast too.
        """
        return official_to_residual(self.forward_official(x))

    def forward_official(self, x: Tensor, *, impl: str | None = None) -> Tensor:
        """Output in the released sign ``ideal - test``.

        Parameters
        ----------
        x : Tensor
            float32 (N, 3, 256, 256) RGB in [0, 1]; validated.
        impl : {"fast", "reference"}, optional
            Overrides :attr:`impl` for this call.

        Returns
        -------
        Tensor
            float32 (N, 1, 256, 256).
        """
        return self._run(x, impl)[0]

    def branches(self, x: Tensor, *, impl: str | None = None) -> Branches:
        """The two intermediate branches (released sign), to localise a mismatch.

        Parameters
        ----------
        x : Tensor
            float32 (N, 3, 256, 256) RGB in [0, 1]; validated.
        impl : {"fast", "reference"}, optional
            Overrides :attr:`impl` for this call.

        Returns
        -------
        Branches
            ``ffa`` (N, 1, 256, 256) and ``structure`` (N, 3, 128, 128), float32.
        """
        return self._run(x, impl)[1]

    def _run(self, x: Tensor, impl: str | None) -> tuple[Tensor, Branches]:
        validate_batch(x)
        impl = self.impl if impl is None else impl
        if impl == "fast":
            return self._run_fast(x)
        if impl == "reference":
            runs = [self._run_reference_pair(torch.cat([image, image])) for image in x.split(1)]
            return (
                torch.cat([out[:1] for out, _ in runs]),
                Branches(*(torch.cat([b[i][:1] for _, b in runs]) for i in range(2))),
            )
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")

    def _run_reference_pair(self, pair: Tensor) -> tuple[Tensor, Branches]:
        """The released forward on one image fed as a pair of identical copies."""
        _ = self.dwt_low(pair)  # computed by the release, never used
        h = torch.cat([conv(pair) for conv in self.dwt_high], 1)
        ffa = self.ffa.forward_reference(pair)
        structure = self.structure.forward_reference(h)
        up = F.interpolate(structure, size=ffa.shape[-2:], mode="bilinear", align_corners=False)
        return ffa + self.merge(up), Branches(ffa, structure)

    def _run_fast(self, x: Tensor) -> tuple[Tensor, Branches]:
        mode = _Exec.for_input(x)
        if mode.inplace and x.shape[0] > self.inference_chunk:
            # Each image is independent: in inference, sub-batches keep the activations small.
            runs = [self._run_fast(c) for c in x.split(self.inference_chunk)]
            return (
                torch.cat([out for out, _ in runs]),
                Branches(*(torch.cat([b[i] for _, b in runs]) for i in range(2))),
            )
        # The fused path sets its dtypes itself (autocast off); the plain one obeys autocast.
        with torch.autocast(device_type=x.device.type, enabled=False) if mode.fused else nullcontext():
            ffa = self.ffa.forward_fast(x, mode).float().contiguous()
        # Branch B and the merge are cheap and precision-sensitive (LayerNorms over 9
        # numbers): they stay float32 under autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            h = torch.cat([conv(xf) for conv in self.dwt_high], 1)
            structure = self.structure.forward_fast(h, inplace=mode.inplace)
            up = F.interpolate(structure, size=ffa.shape[-2:], mode="bilinear", align_corners=False)
            merged = self.merge(up)
        out = merged.add_(ffa) if mode.inplace else ffa + merged
        return out, Branches(ffa, structure)
