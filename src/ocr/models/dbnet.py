"""DBNet = encoder -> decoder -> head (no training logic here; see ``lit_module``)."""

from __future__ import annotations

import torch
from torch import nn

from ocr.models.decoder import FPNDecoder
from ocr.models.encoder import TimmEncoder
from ocr.models.head import DBHead
from ocr.perf.inject import injected


class DBNet(nn.Module):
    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        inner_channels: int = 256,
        k: float = 50.0,
    ) -> None:
        super().__init__()
        self.encoder = TimmEncoder(backbone, pretrained=pretrained, checkpoint_path=checkpoint_path)
        self.decoder = FPNDecoder(self.encoder.channels, inner_channels)
        self.head = DBHead(self.decoder.out_channels, k=k)

    def forward(self, images: torch.Tensor, with_thresh: bool | None = None) -> dict[str, torch.Tensor]:
        if injected("forward"):  # the perf suite's injected 2x slowdown (ocr.perf.inject)
            self.head(self.decoder(self.encoder(images)), with_thresh=with_thresh)
        return self.head(self.decoder(self.encoder(images)), with_thresh=with_thresh)
