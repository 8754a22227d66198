"""DB loss: balanced BCE with 3:1 hard-negative mining on the probability map, dice on the binary
map and masked L1 on the threshold map (weights 5 / 1 / 10 as in the released DB code).

Computed in float32 even under autocast: BCE and the top-k mining are unstable in half precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def balanced_bce(
    pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, negative_ratio: float = 3.0, eps: float = 1e-6
) -> torch.Tensor:
    positive = gt * mask
    negative = (1.0 - gt) * mask
    positive_count = int(positive.sum().item())
    negative_count = min(int(negative.sum().item()), int(positive_count * negative_ratio))
    loss = F.binary_cross_entropy(pred.clamp(eps, 1.0 - eps), gt, reduction="none")
    positive_loss = (loss * positive).sum()
    if negative_count > 0:
        negative_loss = torch.topk((loss * negative).flatten(), negative_count).values.sum()
    else:
        negative_loss = loss.new_zeros(())
    return (positive_loss + negative_loss) / (positive_count + negative_count + eps)


def dice_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    intersection = (pred * gt * mask).sum()
    union = (pred * mask).sum() + (gt * mask).sum() + eps
    return 1.0 - 2.0 * intersection / union


def masked_l1(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return (torch.abs(pred - gt) * mask).sum() / (mask.sum() + eps)


class DBLoss(nn.Module):
    def __init__(
        self,
        bce_weight: float = 5.0,
        dice_weight: float = 1.0,
        l1_weight: float = 10.0,
        negative_ratio: float = 3.0,
    ) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.l1_weight = l1_weight
        self.negative_ratio = negative_ratio

    def forward(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        device = outputs["prob"].device.type
        with torch.autocast(device_type=device, enabled=False):
            return self._losses(outputs, batch)

    def _losses(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        prob_map, prob_mask = batch["prob_maps"].float(), batch["prob_masks"].float()
        prob = outputs["prob"].float().squeeze(1)
        losses = {"loss_prob": balanced_bce(prob, prob_map, prob_mask, self.negative_ratio)}
        total = self.bce_weight * losses["loss_prob"]
        if "thresh" in outputs:
            thresh = outputs["thresh"].float().squeeze(1)
            binary = outputs["binary"].float().squeeze(1)
            losses["loss_binary"] = dice_loss(binary, prob_map, prob_mask)
            losses["loss_thresh"] = masked_l1(
                thresh, batch["thresh_maps"].float(), batch["thresh_masks"].float()
            )
            total = total + self.dice_weight * losses["loss_binary"] + self.l1_weight * losses["loss_thresh"]
        losses["loss"] = total
        return losses
