"""DB head: probability and threshold branches, joined by differentiable binarization."""

from __future__ import annotations

import torch
from torch import nn


def _branch(in_channels: int, bias_init: float | None = None) -> nn.Sequential:
    """conv3x3 -> BN -> ReLU -> deconv x2 -> BN -> ReLU -> deconv x2 -> sigmoid: stride 4 back to 1."""
    mid = in_channels // 4
    last = nn.ConvTranspose2d(mid, 1, 2, stride=2)
    if bias_init is not None and last.bias is not None:
        nn.init.constant_(last.bias, bias_init)
    return nn.Sequential(
        nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(mid, mid, 2, stride=2),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        last,
        nn.Sigmoid(),
    )


class DBHead(nn.Module):
    """Outputs ``prob`` always; ``thresh`` and ``binary`` only in training, where the loss needs them.

    Skipping the threshold branch at inference is what the DB paper does and halves head cost.
    """

    def __init__(self, in_channels: int, k: float = 50.0) -> None:
        super().__init__()
        self.k = k
        self.prob = _branch(in_channels)
        self.thresh = _branch(in_channels)

    def forward(self, x: torch.Tensor, with_thresh: bool | None = None) -> dict[str, torch.Tensor]:
        prob = self.prob(x)
        if with_thresh is None:
            with_thresh = self.training
        if not with_thresh:
            return {"prob": prob}
        thresh = self.thresh(x)
        binary = torch.reciprocal(1.0 + torch.exp(-self.k * (prob - thresh)))
        return {"prob": prob, "thresh": thresh, "binary": binary}
