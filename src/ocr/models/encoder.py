"""Backbone from timm's registry, so any timm model with ``features_only`` support plugs in."""

from __future__ import annotations

from typing import Any, cast

import timm
import torch
from torch import nn


class TimmEncoder(nn.Module):
    """Returns the stride-4/8/16/32 feature maps of a timm backbone.

    ``pretrained`` defaults to False: nothing may be downloaded at run time. Users with weights on
    disk pass ``checkpoint_path`` (timm loads it without a network).
    """

    def __init__(
        self,
        name: str = "resnet18",
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        out_indices: tuple[int, ...] = (1, 2, 3, 4),
    ) -> None:
        super().__init__()
        kwargs: dict[str, Any] = {}
        if checkpoint_path:
            kwargs["pretrained_cfg_overlay"] = {"file": checkpoint_path}
            pretrained = True
        self.body = timm.create_model(
            name, pretrained=pretrained, features_only=True, out_indices=tuple(out_indices), **kwargs
        )
        info = cast(Any, self.body).feature_info
        self.channels: list[int] = list(info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))
