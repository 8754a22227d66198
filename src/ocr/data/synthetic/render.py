"""Seed + config -> one synthetic receipt photo with exact text-line quads."""

from __future__ import annotations

import random

import numpy as np

from ocr.data.sample import TextSample
from ocr.data.synthetic.config import SyntheticReceiptConfig
from ocr.data.synthetic.content import generate_content
from ocr.data.synthetic.degrade import camera_degrade
from ocr.data.synthetic.geometry import (
    boxes_to_quads,
    fit_canvas,
    rect_corners,
    sample_homography,
    transform_points,
    warp_image,
)
from ocr.data.synthetic.ink import composite_ink, rasterize
from ocr.data.synthetic.layout import estimate_columns, place, sample_params
from ocr.data.synthetic.paper import add_fold, paper_mask, paper_texture
from ocr.data.synthetic.scene import drop_shadow, lighting, table_background


def render_receipt(seed: int, config: SyntheticReceiptConfig | None = None) -> TextSample:
    """Render receipt ``seed``: same seed and config give a byte-identical image and identical polygons.

    Words and layout come from ``random.Random(seed)``; pixels from independent streams spawned from
    ``numpy.random.default_rng(seed)`` (paper, ink, camera geometry, scene, degradation), so e.g.
    turning the warp off leaves the text and the paper texture of a seed unchanged. No global random
    state is read or written.

    ``meta`` holds ``seed``, ``paper_boxes`` ((K, 4) ``x0, y0, x1, y1`` on the flat paper, before the
    warp), ``homography`` (3x3, paper -> image, pixel-edge coordinates), ``paper_quad`` (the paper's
    corners in the image), ``kinds`` (what each box is: ``"item"``, ``"price"``, ``"separator"``, ...)
    and ``font_sizes`` (px em size per box).
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    cfg = config if config is not None else SyntheticReceiptConfig()
    rnd = random.Random(seed)
    paper_rng, ink_rng, geo_rng, scene_rng, camera_rng = np.random.default_rng(seed).spawn(5)

    params = sample_params(rnd, cfg)
    content = generate_content(rnd, cfg, estimate_columns(params))
    layout = place(content, params, rnd)
    ink, kept, boxes = rasterize(layout, cfg, ink_rng)

    paper = paper_texture(layout.height, layout.width, paper_rng, cfg)
    composite_ink(paper, ink, ink_rng, cfg)
    add_fold(paper, paper_rng, cfg)
    mask = paper_mask(layout.height, layout.width, paper_rng)

    homography = sample_homography(layout.width, layout.height, geo_rng, cfg)
    margins = geo_rng.integers(cfg.background_margin[0], cfg.background_margin[1] + 1, 4)
    homography, out_w, out_h = fit_canvas(homography, layout.width, layout.height, margins)
    warped = warp_image(paper, homography, (out_w, out_h))
    alpha = warp_image(mask, homography, (out_w, out_h)).astype(np.float32) * (1.0 / 255.0)

    scene = table_background(out_h, out_w, scene_rng)
    scene *= (1.0 - drop_shadow(alpha, scene_rng))[..., None]
    scene += alpha[..., None] * (warped - scene)
    scene *= lighting(out_h, out_w, scene_rng, cfg)[..., None]
    image = camera_degrade(scene, camera_rng, cfg)

    quads = transform_points(boxes_to_quads(boxes), homography).astype(np.float32)
    runs = [layout.runs[i] for i in kept]
    return TextSample(
        image=image,
        polygons=list(quads),
        texts=[r.text for r in runs],
        ignore=[False] * len(runs),
        name=f"synthetic_{seed:06d}",
        meta={
            "seed": seed,
            "paper_boxes": boxes.astype(np.float32),
            "homography": homography,
            "paper_quad": transform_points(rect_corners(layout.width, layout.height), homography).astype(
                np.float32
            ),
            "kinds": [r.kind for r in runs],
            "font_sizes": [r.font_size for r in runs],
        },
    )
