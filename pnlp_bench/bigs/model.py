"""BiGS (Bidirectional Gated SSM) and the three other architectures of its Table 1, in PyTorch.

Paper: "Pretraining Without Attention", Wang, Yan, Gu, Rush (arXiv 2212.10544). The design notes are in
``shared/docs/bigs.md``; this file is the project's own implementation of them.

Two axes, as in the paper's controlled comparison (Table 1):

* ``arch="gated"``: the BiGS layer, pre-norm, no dropout inside the layer, no final LayerNorm::

      h = LN(x); v = GELU(W_v h); f = GELU(W_f h); b = GELU(W_b flip(h))
      u_f = W_cf R_f(f); u_b = flip(W_cb R_b(b))
      x' = x + W_o(GELU(W_l(u_f * u_b)) * v)

* ``arch="stack"``: a BERT-style post-LN block, ``LN(x + R(x))`` then ``LN(h + FFN(h))`` with a
  d -> intermediate_size -> d GELU feed-forward and BERT's hidden dropout on each sublayer output.

and the routing ``R``:

* ``routing="ssm"``: an S4D-style diagonal state space model whose parameters are shared by all d channels
  (one length-L kernel applied depthwise). In STACK the routing sublayer is bidirectional: a forward SSM
  on the sequence plus a backward SSM on the flipped sequence (re-flipped), summed, then a d -> d linear.
* ``routing="attention"``: softmax self-attention through ``F.scaled_dot_product_attention``. In STACK it is
  BERT's multi-head attention (fused q/k/v projection plus an output projection). In GATED each SSM is
  replaced by multi-head self-attention over its own branch with only a q/k/v projection: the W_cf / W_cb
  maps that follow the SSM already act as the attention output projection. Attention is permutation
  equivariant, so flipping the backward branch changes nothing except which projections it sees.
  These three non-BiGS variants are this project's choices (no public code defines them); they are not
  claimed to be the paper's exact definitions.

Padding. The authors' encoder lets pad tokens pass through the SSMs (no mask inside the encoder); with
``mask_padding=False`` (default) this implementation does the same so released checkpoints behave as
trained. ``mask_padding=True`` zeroes pad positions at every SSM input and masks pad keys in attention.
The flag applies to both routings alike, so all four variants see the same inputs.

SSM parametrisation (per SSM module, shared across channels): A_re (N), A_im (N), C as two real N-vectors
C_re and C_im, D (1), log_dt (1)::

    A = min(A_re, -1e-4) + i A_im;  dt = exp(log_dt);  Abar = exp(dt A);  Bbar = (Abar - 1) / A
    K[l] = Re(sum_n C_n Bbar_n Abar_n^l),  l = 0 .. L-1
    y = irfft(rfft(u, 2L) * rfft(K, 2L))[:L] + D u      (zero padding to 2L makes it linear, causal)

Initialisation of A (``ssm_init``):

* ``"legs"`` (the authors' default): the diagonal approximation of HiPPO-LegS used by S4D. The normal part
  of LegS is ``-1/2 I + S`` with S skew-symmetric; its eigenvalues are ``-1/2 + i mu``. We build LegS of
  size 2N, take the eigenvalues mu of S (they come in +/- pairs) and keep the N with **positive imaginary
  part**, in increasing order. Because the kernel takes ``Re(...)`` and C is free, a conjugate eigenvalue
  adds nothing a positive one with conjugated C cannot express. (The authors' JAX code instead takes all N
  eigenvalues of a size-N LegS, half of them negative; this only changes the initial A, never a loaded
  checkpoint.)
* ``"lin"`` (S4D-Lin): ``A_n = -1/2 + i pi n``, n = 0 .. N-1.

log_dt ~ U[log 0.01, log 1], C_re, C_im ~ N(0, 1/2), D = 1 (as the JAX code that trained the checkpoints).
Linear and embedding weights ~ N(0, 0.02), biases 0, LayerNorm 1/0 (BERT's scheme, used by the authors).
GELUs inside the encoder use the tanh approximation by default because ``flax.linen.gelu`` (which trained
the released weights) does; the MLM head's GELU is exact, as the transformers Flax ``"gelu"`` is.

Precision: the kernel and the FFTs run in at least fp32 even when activations are bf16; the result is cast
back to the input dtype so the surrounding matmuls keep their precision.

Parameter count of the released configuration with the MLM head: 346,314,134 exactly
(d = 1024, I = 3072, N = 64, 23 layers, V = 30,522, 128 positions, 2 token types)::

    one GATED layer
      norm (LayerNorm)                         2d           =      2,048
      gate_proj        W_v  d -> I             dI + I       =  3,148,800
      forward_in_proj, backward_in_proj,
      forward_out_proj, backward_out_proj      4 (d^2 + d)  =  4,198,400
      mix_proj         W_l  d -> I             dI + I       =  3,148,800
      out_proj         W_o  I -> d             Id + d       =  3,146,752
      two SSMs  2 x (A_re N + A_im N + C 2N + D 1 + log_dt 1) = 2 x 258 = 516
      ------------------------------------------------------------------------
      per layer                                                13,645,316
      x 23 layers                                             313,842,268
    embeddings  word Vd 31,254,528 + positions 128d 131,072 + types 2d 2,048 + LayerNorm 2,048
                                                               31,389,696
    MLM head    dense d^2 + d 1,049,600 + LayerNorm 2,048 + output bias V 30,522
                (decoder weight tied to the word embeddings: counted once)
                                                                1,082,170
    total                                                     346,314,134

There is no pooler in the MLM model: the authors' Flax MLM model never calls its pooler, so it has no
parameters there (their PyTorch port builds an unused one: +1,049,600 = 347,363,734). Storing C per
channel, or an untied decoder, would not come out at this number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Arch = Literal["gated", "stack"]
Routing = Literal["ssm", "attention"]
SSMInit = Literal["legs", "lin"]
Pooling = Literal["non_padding_mean", "mean"]

_DT_MIN, _DT_MAX = 0.01, 1.0
_A_RE_MAX = -1e-4  # keeps every mode strictly decaying, so the kernel cannot blow up with length


@dataclass
class BiGSConfig:
    """Architecture of a BiGS-family encoder; the defaults are the released 128-token BiGS model."""

    vocab_size: int = 30522
    hidden_size: int = 1024
    num_layers: int = 23
    intermediate_size: int = 3072
    state_size: int = 64
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    arch: Arch = "gated"
    routing: Routing = "ssm"
    num_heads: int = 16
    mask_padding: bool = False
    ssm_init: SSMInit = "legs"
    # "mean" averages over every position, pads included (the authors' 128-token setting);
    # "non_padding_mean" averages over attention_mask == 1 (their 512/1024/4096 settings).
    pooling: Pooling = "non_padding_mean"
    gelu_approximate: Literal["tanh", "none"] = "tanh"
    initializer_range: float = 0.02
    # std of the query and key rows of every attention projection; None = initializer_range (BERT). BERT's 0.02
    # was set at width 768: at width d the initial attention logits shrink with d, and at d 128 attention starts
    # (and, in the controlled copy task, stays) uniform; 0.02 * sqrt(768 / d) gives BERT-base's initial spread
    query_key_initializer_range: float | None = None
    # attention routings: a learned scalar bias per head and relative-position bucket added to the attention logits
    # (T5's bidirectional log buckets up to RELATIVE_MAX_DISTANCE, zero-initialised); None = none (BERT: word order
    # only through the learned absolute positions of the embeddings)
    relative_attention_buckets: int | None = None
    # initial relative bias: -slope * distance for the first head, the slope halved for each further head (ALiBi's
    # geometric spread), so attention starts local as an SSM's kernel does; None = zeros (starts as BERT's)
    relative_attention_init_slope: float | None = None

    def __post_init__(self) -> None:
        choices: dict[str, tuple[str, ...]] = {
            "arch": ("gated", "stack"),
            "routing": ("ssm", "attention"),
            "ssm_init": ("legs", "lin"),
            "pooling": ("non_padding_mean", "mean"),
            "gelu_approximate": ("tanh", "none"),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"BiGSConfig.{name}={getattr(self, name)!r}; expected one of {valid}")
        if self.query_key_initializer_range is not None and not self.query_key_initializer_range > 0:
            raise ValueError(f"query_key_initializer_range must be > 0 or None, got {self.query_key_initializer_range}")
        if self.relative_attention_buckets is not None and not self.relative_attention_buckets >= 4:
            raise ValueError(f"relative_attention_buckets must be >= 4 or None, got {self.relative_attention_buckets}")
        if self.relative_attention_init_slope is not None and (
            self.relative_attention_buckets is None or not self.relative_attention_init_slope >= 0
        ):
            raise ValueError("relative_attention_init_slope needs relative_attention_buckets and a value >= 0, "
                             f"got {self.relative_attention_init_slope}")
        if self.routing == "attention" and self.hidden_size % self.num_heads != 0:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


@dataclass
class BiGSOutput:
    """What every model here returns; ``loss`` is None when no labels were given."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


# ----------------------------------------------------------------------------------------------------------
# The state space model
# ----------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def hippo_legs_diagonal(state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of the S4D diagonal approximation of HiPPO-LegS, N values, imag > 0.

    Computed in float64 with numpy so that it also works while modules are built on the meta device.
    """
    size = 2 * state_size  # eigenvalues of the skew part come in +/- pairs; we keep one of each pair
    n = np.arange(size)
    p = np.sqrt(2 * n + 1)
    legs = -(np.tril(np.outer(p, p)) - np.diag(n))  # HiPPO-LegS: -(2n+1)^.5 (2k+1)^.5 below, -(n+1) on diag
    normal = legs + 0.5 * np.outer(p, p)  # adding the rank-1 term makes it normal: -1/2 I + skew
    skew = normal + 0.5 * np.eye(size)
    imag = np.linalg.eigvalsh(-1j * skew)  # -iS is Hermitian; S has eigenvalues i*mu
    positive = np.sort(imag[imag > 0])
    if positive.shape[0] != state_size:
        raise RuntimeError(f"expected {state_size} positive eigenvalues, got {positive.shape[0]}")
    return np.full(state_size, -0.5), positive


def s4d_lin_diagonal(state_size: int) -> tuple[np.ndarray, np.ndarray]:
    """S4D-Lin: A_n = -1/2 + i pi n."""
    return np.full(state_size, -0.5), math.pi * np.arange(state_size, dtype=np.float64)


class SSM(nn.Module):
    """One diagonal SSM (zero-order hold) applied depthwise, with one kernel shared by all channels.

    Input and output are (batch, length, channels). ``forward`` convolves with the FFT; ``recurrence`` runs
    the same system step by step and exists so tests can check the FFT path against it.
    """

    def __init__(self, state_size: int, init: SSMInit = "legs") -> None:
        super().__init__()
        a_re, a_im = hippo_legs_diagonal(state_size) if init == "legs" else s4d_lin_diagonal(state_size)
        self.A_re = nn.Parameter(torch.tensor(a_re, dtype=torch.float32))
        self.A_im = nn.Parameter(torch.tensor(a_im, dtype=torch.float32))
        self.C_re = nn.Parameter(torch.randn(state_size) * math.sqrt(0.5))
        self.C_im = nn.Parameter(torch.randn(state_size) * math.sqrt(0.5))
        self.D = nn.Parameter(torch.ones(1))
        log_span = math.log(_DT_MAX) - math.log(_DT_MIN)
        self.log_dt = nn.Parameter(torch.rand(1) * log_span + math.log(_DT_MIN))

    def _real_dtype(self) -> torch.dtype:
        # fp32 at least: the kernel's exp(l dt A) loses all precision in bf16 long before l reaches 4096
        return torch.promote_types(self.A_re.dtype, torch.float32)

    def _continuous(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(A, dt, C): complex A and C of length N, real step dt of shape (1,)."""
        real = self._real_dtype()
        a = torch.clamp(self.A_re.to(real), max=_A_RE_MAX) + 1j * self.A_im.to(real)
        c = self.C_re.to(real) + 1j * self.C_im.to(real)
        return a, torch.exp(self.log_dt.to(real)), c

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Abar, Bbar, C) of the zero-order-hold discretisation, complex vectors of length N."""
        a, dt, c = self._continuous()
        a_bar = torch.exp(dt * a)
        return a_bar, (a_bar - 1) / a, c

    def kernel(self, length: int) -> torch.Tensor:
        """K[l] = Re(sum_n C_n Bbar_n Abar_n^l) for l < length; shape (length,)."""
        a, dt, c = self._continuous()
        dt_a = dt * a
        c_b = c * (torch.exp(dt_a) - 1) / a
        steps = torch.arange(length, device=a.device, dtype=dt.dtype)
        # exp(l dt A) directly rather than powers of Abar: one exp per entry, no error build-up along l
        vandermonde = torch.exp(dt_a[:, None] * steps[None, :])
        return (c_b @ vandermonde).real

    def forward(self, u: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        length = u.shape[1]
        compute = torch.promote_types(u.dtype, self._real_dtype())
        u_full = u.to(compute)
        if padding_mask is not None:
            u_full = u_full * padding_mask[..., None].to(compute)
        kernel_freq = torch.fft.rfft(self.kernel(length).to(compute), n=2 * length)
        u_freq = torch.fft.rfft(u_full, n=2 * length, dim=1)
        y = torch.fft.irfft(u_freq * kernel_freq[None, :, None], n=2 * length, dim=1)[:, :length]
        y = y + self.D.to(compute) * u_full
        return y.to(u.dtype)

    def recurrence(self, u: torch.Tensor) -> torch.Tensor:
        """x_l = Abar x_{l-1} + Bbar u_l, y_l = Re(C x_l) + D u_l, one step at a time (slow, for tests)."""
        a_bar, b_bar, c = self.discretize()
        compute = torch.promote_types(u.dtype, self._real_dtype())
        u_full = u.to(compute)
        state = torch.zeros(*u.shape[:1], u.shape[2], a_bar.shape[0], dtype=a_bar.dtype, device=u.device)
        outputs = []
        for step in range(u.shape[1]):
            state = a_bar * state + b_bar * u_full[:, step, :, None]
            outputs.append((state @ c).real + self.D.to(compute) * u_full[:, step])
        return torch.stack(outputs, dim=1).to(u.dtype)


class BidirectionalSSM(nn.Module):
    """STACK+SSM routing: forward SSM plus re-flipped backward SSM on the flipped sequence, then d -> d."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.forward_ssm = SSM(config.state_size, config.ssm_init)
        self.backward_ssm = SSM(config.state_size, config.ssm_init)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        flipped_mask = None if padding_mask is None else padding_mask.flip(1)
        backward = self.backward_ssm(x.flip(1), flipped_mask).flip(1)
        return self.out_proj(self.forward_ssm(x, padding_mask) + backward)


RELATIVE_MAX_DISTANCE = 128  # T5's: offsets beyond it share the last bucket of their direction


def relative_position_buckets(length: int, num_buckets: int, max_distance: int = RELATIVE_MAX_DISTANCE) -> torch.Tensor:
    """[length, length] bucket of key position j seen from query position i, T5's bidirectional scheme: half the
    buckets per direction, the first half of those exact offsets, the rest logarithmic up to `max_distance`."""
    offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # key - query
    half = num_buckets // 2
    bucket = (offset > 0).long() * half
    distance = offset.abs()
    exact = half // 2
    far = exact + (
        torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact) * (half - exact)
    ).long()
    far = far.clamp(max=half - 1)
    return bucket + torch.where(distance < exact, distance, far)


@lru_cache(maxsize=64)
def _bucket_index(length: int, num_buckets: int, device: str) -> torch.Tensor:
    """`relative_position_buckets` computed once per (length, buckets, device): every attention layer of every
    step asks for the same index. Read-only; callers index with it and never write to it."""
    return relative_position_buckets(length, num_buckets).to(device)


def bucket_distances(num_buckets: int, max_distance: int = RELATIVE_MAX_DISTANCE) -> torch.Tensor:
    """[num_buckets] the smallest |offset| each bucket holds (0 for a bucket no offset reaches)."""
    buckets = relative_position_buckets(max_distance + 1, num_buckets, max_distance)
    distances = torch.zeros(num_buckets)
    offsets = torch.arange(max_distance + 1)
    for row, column in ((0, offsets), (max_distance, max_distance - offsets)):  # rightward, then leftward
        for distance, bucket in zip(offsets.tolist(), buckets[row, column].tolist()):
            if distances[bucket] == 0:
                distances[bucket] = distance
    return distances


class SelfAttention(nn.Module):
    """Bidirectional multi-head softmax attention through ``F.scaled_dot_product_attention``, optionally with a
    learned relative-position bias on its logits (``relative_buckets``)."""

    def __init__(
        self, hidden_size: int, num_heads: int, dropout: float, output_projection: bool,
        relative_buckets: int | None = None, relative_init_slope: float | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size) if output_projection else None
        self.relative_buckets = relative_buckets
        # named *_bias so the optimiser keeps it out of weight decay; zeros: attention starts as BERT's
        self.relative_position_bias = (
            nn.Parameter(torch.zeros(num_heads, relative_buckets)) if relative_buckets is not None else None
        )
        if relative_buckets is not None and relative_init_slope:
            slopes = relative_init_slope * 0.5 ** torch.arange(num_heads, dtype=torch.float32)
            with torch.no_grad():
                self.relative_position_bias.copy_(-slopes[:, None] * bucket_distances(relative_buckets)[None])

    def _logit_bias(self, length: int, padding_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """The attention mask SDPA takes: boolean padding alone, or the float relative bias with pads at -inf."""
        if self.relative_position_bias is None:
            # a boolean mask is True where attending is allowed; broadcast over heads and query positions
            return None if padding_mask is None else padding_mask.bool()[:, None, None, :]
        buckets = _bucket_index(length, self.relative_buckets, str(self.relative_position_bias.device))
        bias = self.relative_position_bias[:, buckets][None].to(dtype)  # [1, heads, length, length]
        if padding_mask is not None:
            bias = bias.masked_fill(~padding_mask.bool()[:, None, None, :], float("-inf"))
        return bias

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, hidden = x.shape
        qkv = self.qkv_proj(x).view(batch, length, 3, self.num_heads, hidden // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return query, key, value

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, heads, length, length] the softmax weights `forward` applies (no padding, no dropout); for
        diagnostics (`bench probe`)."""
        query, key, _ = self._heads(x)
        logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        bias = self._logit_bias(x.shape[1], None, logits.dtype)
        return F.softmax(logits if bias is None else logits + bias, dim=-1)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, length, hidden = x.shape
        query, key, value = self._heads(x)
        y = F.scaled_dot_product_attention(
            query, key, value, attn_mask=self._logit_bias(length, padding_mask, query.dtype),
            dropout_p=self.dropout if self.training else 0.0,
        )
        y = y.transpose(1, 2).reshape(batch, length, hidden)
        return self.out_proj(y) if self.out_proj is not None else y


# ----------------------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------------------


class GatedBlock(nn.Module):
    """The BiGS layer (pre-norm, multiplicative gating); routing is two SSMs or two attentions."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.gelu_approximate = config.gelu_approximate
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.gate_proj = nn.Linear(hidden, inner)  # W_v
        self.forward_in_proj = nn.Linear(hidden, hidden)  # W_f
        self.backward_in_proj = nn.Linear(hidden, hidden)  # W_b
        self.forward_routing = self._routing(config)
        self.backward_routing = self._routing(config)
        self.forward_out_proj = nn.Linear(hidden, hidden)  # W_cf
        self.backward_out_proj = nn.Linear(hidden, hidden)  # W_cb
        self.mix_proj = nn.Linear(hidden, inner)  # W_l
        self.out_proj = nn.Linear(inner, hidden)  # W_o

    @staticmethod
    def _routing(config: BiGSConfig) -> nn.Module:
        if config.routing == "ssm":
            return SSM(config.state_size, config.ssm_init)
        # no dropout inside a GATED layer, whatever the routing, so the two routings differ in routing only
        return SelfAttention(
            config.hidden_size, config.num_heads, dropout=0.0, output_projection=False,
            relative_buckets=config.relative_attention_buckets, relative_init_slope=config.relative_attention_init_slope,
        )

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        def gelu(t: torch.Tensor) -> torch.Tensor:
            return F.gelu(t, approximate=self.gelu_approximate)

        h = self.norm(x)
        gate = gelu(self.gate_proj(h))
        forward_branch = gelu(self.forward_in_proj(h))
        backward_branch = gelu(self.backward_in_proj(h.flip(1)))
        flipped_mask = None if padding_mask is None else padding_mask.flip(1)
        u_forward = self.forward_out_proj(self.forward_routing(forward_branch, padding_mask))
        # re-flip so that position l of u_backward summarises tokens l .. L-1, aligned with u_forward
        u_backward = self.backward_out_proj(self.backward_routing(backward_branch, flipped_mask)).flip(1)
        return x + self.out_proj(gelu(self.mix_proj(u_forward * u_backward)) * gate)


class StackBlock(nn.Module):
    """BERT-style post-LN block: routing sublayer, then a feed-forward sublayer of width intermediate_size."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.gelu_approximate = config.gelu_approximate
        self.routing: nn.Module
        if config.routing == "ssm":
            self.routing = BidirectionalSSM(config)
        else:
            self.routing = SelfAttention(
                hidden, config.num_heads, config.dropout, output_projection=True,
                relative_buckets=config.relative_attention_buckets,
                relative_init_slope=config.relative_attention_init_slope,
            )
        self.routing_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(hidden, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.routing_norm(x + self.dropout(self.routing(x, padding_mask)))
        ffn = self.ffn_out(F.gelu(self.ffn_in(h), approximate=self.gelu_approximate))
        return self.ffn_norm(h + self.dropout(ffn))


# ----------------------------------------------------------------------------------------------------------
# Backbone and heads
# ----------------------------------------------------------------------------------------------------------


def _init_bert_style(root: nn.Module, std: float) -> None:
    """N(0, std) weights and zero biases for Linear/Embedding, 1/0 for LayerNorm; SSMs keep their own init."""
    for module in root.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class BiGSEmbeddings(nn.Module):
    """word + learned absolute position + token type, then LayerNorm and dropout."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        length = input_ids.shape[1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"sequence length {length} exceeds max_position_embeddings {self.position_embeddings.num_embeddings}"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(length, device=input_ids.device)
        embedded = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.layer_norm(embedded))


class BiGSEncoder(nn.Module):
    """The stack of blocks; no final LayerNorm (the released pre-norm model has none)."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        block = GatedBlock if config.arch == "gated" else StackBlock
        self.layers = nn.ModuleList(block(config) for _ in range(config.num_layers))

    def forward(self, hidden: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            hidden = layer(hidden, padding_mask)
        return hidden


class BiGSModel(nn.Module):
    """Embeddings plus encoder; returns the last hidden states (batch, length, hidden)."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BiGSEmbeddings(config)
        self.encoder = BiGSEncoder(config)
        _init_bert_style(self, config.initializer_range)
        if config.query_key_initializer_range is not None:
            with torch.no_grad():  # the query and key rows of each fused projection; values keep the BERT init
                for module in self.modules():
                    if isinstance(module, SelfAttention):
                        module.qkv_proj.weight[: 2 * config.hidden_size].normal_(0.0, config.query_key_initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.embeddings(input_ids, token_type_ids)
        padding_mask = attention_mask.bool() if self.config.mask_padding and attention_mask is not None else None
        return self.encoder(hidden, padding_mask)


class MLMHead(nn.Module):
    """dense d -> d, GELU, LayerNorm, then the (tied) decoder matrix and a per-token output bias."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        _init_bert_style(self, config.initializer_range)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, decoder_weight: torch.Tensor) -> torch.Tensor:
        # exact GELU here: the released head used the transformers Flax "gelu", which is the erf form
        return F.linear(self.layer_norm(F.gelu(self.dense(hidden))), decoder_weight, self.bias)


class BiGSForMaskedLM(nn.Module):
    """Encoder plus the BERT MLM head; the decoder reuses the word embedding matrix, plus its own bias."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = BiGSModel(config)
        # the decoder weight is not a module of its own: the word embedding matrix is passed in at call time,
        # so the tie survives .to(), load_state_dict and parameter counting without bookkeeping
        self.mlm_head = MLMHead(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> BiGSOutput:
        hidden = self.backbone(input_ids, attention_mask, token_type_ids)
        logits = self.mlm_head(hidden, self.backbone.embeddings.word_embeddings.weight)
        loss = None
        if labels is not None:
            # labels are -100 everywhere except the masked positions, so only those are scored
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), labels.view(-1), ignore_index=-100)
        return BiGSOutput(logits=logits, loss=loss)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: Pooling) -> torch.Tensor:
    """Average over positions: all of them, or those with attention_mask == 1. (batch, L, d) -> (batch, d)."""
    if attention_mask is None or pooling == "mean":
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype)[..., None]
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class BiGSPooler(nn.Module):
    """Mean pooling (no [CLS] token in BiGS), then dense d -> d and tanh."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.pooling = config.pooling
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return torch.tanh(self.dense(mean_pool(hidden, attention_mask, self.pooling)))


class BiGSForSequenceClassification(nn.Module):
    """Pooled encoder output -> dropout -> linear; ``num_labels == 1`` is regression (MSE)."""

    def __init__(self, config: BiGSConfig, num_labels: int = 2) -> None:
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.backbone = BiGSModel(config)
        self.pooler = BiGSPooler(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        _init_bert_style(self.pooler, config.initializer_range)
        _init_bert_style(self.classifier, config.initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> BiGSOutput:
        hidden = self.backbone(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(self.pooler(hidden, attention_mask)))
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels)
        return BiGSOutput(logits=logits, loss=loss)


class BiGSForMultipleChoice(nn.Module):
    """Each (batch, choice) sequence pooled and scored by one linear unit; softmax over choices."""

    def __init__(self, config: BiGSConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = BiGSModel(config)
        self.pooler = BiGSPooler(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, 1)
        _init_bert_style(self.pooler, config.initializer_range)
        _init_bert_style(self.classifier, config.initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> BiGSOutput:
        batch, num_choices, length = input_ids.shape
        # every choice is an independent sequence: fold choices into the batch, unfold the scores
        flat_ids = input_ids.reshape(batch * num_choices, length)
        flat_mask = None if attention_mask is None else attention_mask.reshape(batch * num_choices, length)
        flat_types = None if token_type_ids is None else token_type_ids.reshape(batch * num_choices, length)
        hidden = self.backbone(flat_ids, flat_mask, flat_types)
        scores = self.classifier(self.dropout(self.pooler(hidden, flat_mask)))
        logits = scores.view(batch, num_choices)
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return BiGSOutput(logits=logits, loss=loss)
