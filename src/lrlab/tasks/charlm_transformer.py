"""``charlm-transformer``: a small causal Transformer language model on characters of Python's own stdlib source.

The corpus is the leading characters of the sorted top-level ``*.py`` files of the running interpreter's
standard library (``sysconfig.get_paths()["stdlib"]``): offline and fixed for a given Python version, whose
sha256 goes into ``info`` (it differs between Python versions). The text is cut into non-overlapping windows
of ``context`` characters; the first ``train_windows`` train, the next ``val_windows`` validate.

Post-LayerNorm (the original Transformer's, default) trained with AdamW at a high LR needs warmup; the
Pre-LayerNorm variant (``charlm-transformer-pre``) is much less sensitive to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sysconfig
from functools import lru_cache, partial
from pathlib import Path

import torch
from torch import Tensor, nn

from lrlab.errors import ConfigError
from lrlab.tasks.base import OptimizerDefaults, Task, accuracy, cross_entropy

_NORMS = ("post", "pre")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` sees positions ``<= t``: ``(B, T, d) -> (B, T, d)``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        B, T, d = x.shape
        # (B, T, 3d) -> three (B, heads, T, d / heads)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    """Attention then a 4x-wide GELU MLP, each residual; LayerNorm after each sum (post) or before each (pre)."""

    def __init__(self, d_model: int, n_heads: int, norm: str) -> None:
        super().__init__()
        self.pre_norm = norm == "pre"
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_norm:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class CharTransformer(nn.Module):
    """Causal character LM: token ids ``(B, T)`` int64 -> next-character logits ``(B, T, vocab_size)``.

    Args:
        vocab_size: number of distinct characters.
        context: maximum sequence length ``T`` (learned position embeddings).
        d_model: embedding width; n_heads must divide it.
        n_heads: attention heads per layer.
        n_layers: Transformer blocks.
        norm: ``"post"`` (LayerNorm after each residual sum) or ``"pre"`` (before each sublayer, plus a final one).
    """

    def __init__(self, vocab_size: int, context: int, d_model: int, n_heads: int, n_layers: int, norm: str) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.Sequential(*(Block(d_model, n_heads, norm) for _ in range(n_layers)))
        self.ln_f = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx: Tensor) -> Tensor:
        positions = torch.arange(idx.shape[-1], device=idx.device)
        return self.head(self.ln_f(self.blocks(self.tok(idx) + self.pos(positions))))


def _stdlib_files() -> list[Path]:
    # private modules are skipped: they include _sysconfigdata*, which differs between builds of one version
    return sorted(p for p in Path(sysconfig.get_paths()["stdlib"]).glob("*.py") if not p.name.startswith("_"))


@lru_cache(maxsize=4)
def _corpus(num_chars: int) -> str:
    parts, total = [], 0
    for path in _stdlib_files():
        if total >= num_chars:
            break
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
    if total < num_chars:
        raise RuntimeError(f"the stdlib sources under {sysconfig.get_paths()['stdlib']} hold {total} characters "
                           f"of *.py, fewer than the {num_chars} this task needs")
    return "".join(parts)[:num_chars]


def make_task(
    norm: str = "post",
    context: int = 64,
    train_windows: int = 4800,
    val_every: int = 10,
    d_model: int = 128,
    n_heads: int = 4,
    n_layers: int = 2,
) -> Task:
    """The ``charlm-transformer`` task: AdamW lr 1e-2, batch 16, one epoch of 300 steps by default.

    Args:
        norm: ``"post"`` or ``"pre"`` LayerNorm.
        context: characters per window (sequence length).
        train_windows: training windows; ``train_windows / 16`` steps per epoch.
        val_every: every ``val_every``-th window of the text is held out for validation (10: 4800 train,
            533 validation windows).
        d_model, n_heads, n_layers: model size (see :class:`CharTransformer`).
    """
    if norm not in _NORMS:
        raise ConfigError(f"norm={norm!r} is invalid: expected one of {list(_NORMS)}")
    num_windows = train_windows + train_windows // (val_every - 1)
    text = _corpus(num_windows * context + 1)
    vocab = sorted(set(text))
    ids = _encode(text, vocab)
    x = ids[:-1].view(num_windows, context)
    y = ids[1:].view(num_windows, context)
    is_val = torch.arange(num_windows) % val_every == val_every - 1
    suffix = "" if norm == "post" else f"-{norm}"
    return Task(
        name=f"charlm-transformer{suffix}",
        description=f"{norm.capitalize()}-LN causal Transformer ({n_layers} layers, d_model {d_model}) predicting "
        f"the next character of Python stdlib source ({context}-char windows); AdamW, one epoch of "
        f"{train_windows // 16} steps. Post-LN at lr 1e-2 stalls without warmup.",
        x_train=x[~is_val],
        y_train=y[~is_val],
        x_val=x[is_val],
        y_val=y[is_val],
        make_model=partial(CharTransformer, len(vocab), context, d_model, n_heads, n_layers, norm),
        loss_fn=cross_entropy,
        accuracy_fn=accuracy,
        optimizer=OptimizerDefaults(name="adamw", lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01),
        batch_size=16,
        epochs=1,
        vmappable=False,  # attention has no vmap batching rule on the CPU: runs go one by one
        info={
            "corpus": "leading characters of sorted(stdlib/*.py)",
            "corpus_chars": str(len(text)),
            "corpus_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "python_version": platform.python_version(),
            "vocab_size": str(len(vocab)),
            "model_args": json.dumps({"norm": norm, "context": context, "d_model": d_model, "n_heads": n_heads,
                                      "n_layers": n_layers}),
        },
    )


def _encode(text: str, vocab: list[str]) -> Tensor:
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def make_pre_ln_task() -> Task:
    """The ``charlm-transformer-pre`` task: :func:`make_task` with Pre-LayerNorm blocks."""
    return make_task(norm="pre")
