"""DBNet shapes, differentiable binarization and the DB loss on hand-made maps."""

from __future__ import annotations

import pytest
import torch

from ocr.models.dbnet import DBNet
from ocr.models.loss import DBLoss, balanced_bce, dice_loss, masked_l1


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv3_small_050"])
def test_dbnet_outputs_full_resolution_maps(backbone: str) -> None:
    model = DBNet(backbone=backbone, inner_channels=32).train()
    out = model(torch.randn(2, 3, 128, 96))
    assert set(out) == {"prob", "thresh", "binary"}
    for value in out.values():
        assert value.shape == (2, 1, 128, 96)
        assert torch.all((value >= 0) & (value <= 1))
    model.eval()
    with torch.no_grad():
        assert set(model(torch.randn(1, 3, 64, 64))) == {"prob"}


def test_binary_map_is_the_db_step_function() -> None:
    model = DBNet(backbone="mobilenetv3_small_050", inner_channels=32).train()
    out = model(torch.randn(1, 3, 64, 64))
    expected = 1.0 / (1.0 + torch.exp(-50.0 * (out["prob"] - out["thresh"])))
    torch.testing.assert_close(out["binary"], expected)


def test_balanced_bce_mines_three_negatives_per_positive() -> None:
    gt = torch.zeros(1, 10, 10)
    gt[0, 0, :2] = 1.0  # 2 positives -> 6 hardest negatives count
    mask = torch.ones_like(gt)
    pred = torch.full_like(gt, 0.01)
    pred[0, 0, :2] = 0.99
    hard = [(5, 5), (6, 6), (7, 7), (8, 8), (9, 9), (4, 4)]
    for y, x in hard:
        pred[0, y, x] = 0.9
    loss = balanced_bce(pred, gt, mask)
    bce_pos = -torch.log(torch.tensor(0.99))
    bce_hard = -torch.log(torch.tensor(0.1))
    expected = (2 * bce_pos + 6 * bce_hard) / 8
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)


def test_masks_exclude_ignored_pixels() -> None:
    gt = torch.zeros(1, 8, 8)
    pred = torch.rand(1, 8, 8)
    mask = torch.zeros_like(gt)
    assert float(dice_loss(pred, gt, mask)) == pytest.approx(1.0)
    assert float(masked_l1(pred, gt, mask)) == 0.0


def test_db_loss_is_a_weighted_sum_and_backpropagates() -> None:
    model = DBNet(backbone="mobilenetv3_small_050", inner_channels=32).train()
    out = model(torch.randn(2, 3, 64, 64))
    batch = {
        "prob_maps": (torch.rand(2, 64, 64) > 0.8).float(),
        "prob_masks": torch.ones(2, 64, 64),
        "thresh_maps": torch.rand(2, 64, 64) * 0.4 + 0.3,
        "thresh_masks": (torch.rand(2, 64, 64) > 0.5).float(),
    }
    losses = DBLoss()(out, batch)
    total = 5 * losses["loss_prob"] + losses["loss_binary"] + 10 * losses["loss_thresh"]
    torch.testing.assert_close(losses["loss"], total)
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.head.parameters())
