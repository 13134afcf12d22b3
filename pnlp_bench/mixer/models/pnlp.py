"""pNLP-Mixer: non-trainable projection -> linear bottleneck -> backbone -> task head (paper, Figure 1)."""

from __future__ import annotations

import torch
from torch import nn

from pnlp_bench.mixer.models.bottleneck import ProjectionBottleneck


class PNLPModel(nn.Module):
    def __init__(self, bottleneck: ProjectionBottleneck, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        self.backbone = backbone
        self.head = head

    def forward(self, features: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None = None) -> dict:
        hidden = self.bottleneck(features, values)
        if getattr(self.backbone, "padding_aware", False):
            # With no word of a row inside position t's window, t holds the bottleneck's bias alone.
            # The head gets the longest row's positions only (fewer than S when every row is shorter).
            return self.head(self.backbone(hidden, mask, window=self.bottleneck.window, trim=True), mask)
        return self.head(self.backbone(hidden, mask), mask)

    def parameter_counts(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.parameters())
        comparable = (
            sum(p.numel() for p in self.bottleneck.parameters())
            + sum(p.numel() for p in self.backbone.parameters())
            + self.head.paper_comparable_parameters()
        )
        return {"total": total, "paper_comparable": comparable}
