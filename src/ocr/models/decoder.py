"""FPN decoder as in DB: top-down sum, then every level upsampled to stride 4 and concatenated."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FPNDecoder(nn.Module):
    def __init__(self, in_channels: list[int], inner_channels: int = 256) -> None:
        super().__init__()
        if inner_channels % len(in_channels):
            raise ValueError(
                f"inner_channels={inner_channels} must be divisible by {len(in_channels)} levels"
            )
        out_per_level = inner_channels // len(in_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, inner_channels, 1, bias=False) for c in in_channels)
        self.smooth = nn.ModuleList(
            nn.Conv2d(inner_channels, out_per_level, 3, padding=1, bias=False) for _ in in_channels
        )
        self.out_channels = out_per_level * len(in_channels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral, features, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest"
            )
        size = laterals[0].shape[-2:]
        outs = [
            F.interpolate(conv(x), size=size, mode="nearest") if i else conv(x)
            for i, (conv, x) in enumerate(zip(self.smooth, laterals, strict=True))
        ]
        return torch.cat(outs, dim=1)
