"""Self-attention over time used inside AT_TAB: multi-head, AFT-local and AFT-simple.

Each block maps ``[B, C, T] -> [B, C, T]``: project the C channels to ``d_model``, mix the
frames, project back to C. Multi-head attention (Vaswani et al., NeurIPS 2017) is the
default; the AFT variants cost linear memory in T instead of quadratic (docs/lineage.md
says how the lab's runs compared them).

AFT is from Zhai et al., "An Attention Free Transformer" (2021).
"""

from __future__ import annotations

import torch
from torch import nn

from domadapt.models.tcn import check_choice

ATTENTION_CHOICES = ("mha", "aft_local", "aft_simple")


class MultiHeadSelfAttention(nn.Module):
    """Classic multi-head self-attention over the frames (``nn.MultiheadAttention``).

    Args:
        channels: C, channels of the input and output.
        d_model: width inside the attention; must be divisible by ``n_head``.
        n_head: number of heads.
        dropout: dropout on the attention weights.

    Shape: ``[B, C, T] -> [B, C, T]``.
    """

    def __init__(self, channels: int, *, d_model: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.proj_in = nn.Linear(channels, d_model)
        self.attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.proj_out = nn.Linear(d_model, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj_in(x.transpose(1, 2))  # [B, T, d_model]
        h, _ = self.attn(h, h, h, need_weights=False)
        return self.proj_out(h).transpose(1, 2)


class AFTSimple(nn.Module):
    """AFT-simple: ``y_t = sigmoid(q_t) * sum_t' softmax_t'(k)_t' * v_t'`` (per feature).

    Linear in T: one global context vector per sequence, gated by each frame's query.

    Shape: ``[B, C, T] -> [B, C, T]``.
    """

    def __init__(self, channels: int, *, d_model: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(channels, 3 * d_model)
        self.proj_out = nn.Linear(d_model, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x.transpose(1, 2)).chunk(3, dim=-1)  # each [B, T, d]
        context = (torch.softmax(k, dim=1) * v).sum(dim=1, keepdim=True)  # [B, 1, d]
        return self.proj_out(torch.sigmoid(q) * context).transpose(1, 2)


class AFTLocal(nn.Module):
    """AFT-local: ``y_t = sigmoid(q_t) * sum_t' exp(k_t' + w_{t,t'}) v_t' / sum_t' exp(k_t' + w_{t,t'})``.

    ``w_{t,t'}`` is a learned position bias inside the window ``|t - t'| < window`` and 0
    outside it. Unlike the paper's absolute ``T_max x T_max`` bias, the bias here is
    *relative* (one value per offset, ``2 * window - 1`` of them), so any length T works.
    The sums are two ``[T, T] @ [B, T, d]`` products (no ``[B, T, T, d]`` tensor), made
    stable by subtracting the per-sequence maximum of k.

    Shape: ``[B, C, T] -> [B, C, T]``.
    """

    def __init__(self, channels: int, *, d_model: int, window: int) -> None:
        super().__init__()
        self.window = window
        self.qkv = nn.Linear(channels, 3 * d_model)
        self.proj_out = nn.Linear(d_model, channels)
        # Zero init: AFT-local starts as AFT-full without position bias (the paper's init).
        self.rel_bias = nn.Parameter(torch.zeros(2 * window - 1))

    def position_bias(self, length: int, device: torch.device) -> torch.Tensor:
        """``w`` as a ``[T, T]`` matrix: the relative bias inside the window, 0 outside."""
        pos = torch.arange(length, device=device)
        offset = pos[None, :] - pos[:, None]  # t' - t
        inside = offset.abs() < self.window
        index = (offset + self.window - 1).clamp(0, 2 * self.window - 2)
        zero = torch.zeros((), device=device, dtype=self.rel_bias.dtype)
        return torch.where(inside, self.rel_bias[index], zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x.transpose(1, 2)).chunk(3, dim=-1)  # each [B, T, d]
        # float32 for the weights and both sums: under fp16 autocast the denominator can
        # underflow when the bias pushes the largest key out of a frame's window.
        w = self.position_bias(x.shape[2], x.device).float()
        k, v = k.float(), v.float()
        exp_w = torch.exp(w - w.max())  # [T, T]; the constant cancels in the ratio
        exp_k = torch.exp(k - k.amax(dim=1, keepdim=True))  # [B, T, d]
        num = torch.matmul(exp_w, exp_k * v)
        den = torch.matmul(exp_w, exp_k)
        return self.proj_out(torch.sigmoid(q) * (num / den).to(q.dtype)).transpose(1, 2)


def build_attention(
    kind: str, channels: int, *, d_model: int, n_head: int, window: int, dropout: float
) -> nn.Module:
    """One attention block of ``kind`` (``mha`` | ``aft_local`` | ``aft_simple``) for AT_TAB."""
    check_choice("attention", kind, ATTENTION_CHOICES)
    if kind == "mha":
        return MultiHeadSelfAttention(channels, d_model=d_model, n_head=n_head, dropout=dropout)
    if kind == "aft_local":
        return AFTLocal(channels, d_model=d_model, window=window)
    return AFTSimple(channels, d_model=d_model)
