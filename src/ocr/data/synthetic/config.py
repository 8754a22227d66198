"""Every knob of the synthetic receipt generator in one frozen record, so a seed + config names one image."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ocr.schema import check_fields, knob, probability


@dataclass(frozen=True)
class SyntheticReceiptConfig:
    """Sizes, content amounts and augmentation strengths of one synthetic receipt.

    Ranges are inclusive ``(low, high)`` pairs sampled uniformly per receipt. Pixel sizes are in the
    final image (before any training resize). The defaults give tall, narrow receipts (paper ~360-520
    px wide, ~600-1100 px tall) whose text boxes are mostly 12-24 px tall, so text stays >= ~7 px
    after resizing the longest side to 640.
    """

    # --- paper and layout -------------------------------------------------------------------------
    paper_width: tuple[int, int] = knob((360, 520), int, minimum=0, length=2)
    """Width of the paper strip in pixels; the height follows the content."""
    paper_side_margin: tuple[int, int] = knob((14, 30), int, minimum=0, length=2)
    """Blank paper left/right of the text column (real printers never print to the edge)."""
    paper_top_margin: tuple[int, int] = knob((18, 48), int, minimum=0, length=2)
    paper_bottom_margin: tuple[int, int] = knob((24, 64), int, minimum=0, length=2)
    background_margin: tuple[int, int] = knob((12, 56), int, minimum=0, length=2)
    """Table visible around the (rotated, warped) paper on every side, so no text is ever cut."""
    line_spacing: tuple[float, float] = knob((1.2, 1.45), float, minimum=0.0, length=2)
    """Baseline-to-baseline distance as a multiple of the line's largest font size."""

    # --- fonts (pixel em sizes) --------------------------------------------------------------------
    body_font_size: tuple[int, int] = knob((17, 21), int, minimum=0, length=2)
    title_font_size: tuple[int, int] = knob((26, 36), int, minimum=0, length=2)
    subtitle_font_size: tuple[int, int] = knob((14, 17), int, minimum=0, length=2)
    """Address/phone/footer lines: smaller than the body, like real receipts."""
    total_font_size_boost: tuple[int, int] = knob((0, 6), int, minimum=0, length=2)
    """TOTAL line is the body size plus this many pixels (bold)."""
    proportional_body_prob: float = probability(0.2)
    """Chance the body uses DejaVuSans instead of the usual monospace printer font."""

    # --- content amounts ---------------------------------------------------------------------------
    header_lines: tuple[int, int] = knob((2, 4), int, minimum=0, length=2)
    """Address / phone / web lines under the store name."""
    item_lines: tuple[int, int] = knob((4, 13), int, minimum=0, length=2)
    quantity_line_prob: float = probability(0.3)
    """Chance an item gets an extra ``2 x 3.49`` line under it."""
    column_header_prob: float = probability(0.35)
    """Chance of a ``QTY  ITEM  PRICE`` column header above the items."""
    footer_lines: tuple[int, int] = knob((1, 3), int, minimum=0, length=2)
    barcode_prob: float = probability(0.4)
    """Chance of a barcode (ink without a box: a hard negative) at the bottom."""

    # --- boxes -------------------------------------------------------------------------------------
    box_padding: float = knob(1.0, minimum=0.0)
    """Pixels added around the ink-tight box on every side (annotators never cut glyphs)."""
    min_box_height: float = knob(6.0, minimum=0.0)
    """Thin runs (``-----``) are grown to this height: sub-5 px polygons vanish after DBNet shrinking."""

    # --- paper appearance --------------------------------------------------------------------------
    paper_noise: tuple[float, float] = knob((2.0, 7.0), float, minimum=0.0, length=2)
    """Std of the paper grain, in 0-255 intensity units."""
    yellowing: tuple[float, float] = knob((0.0, 0.14), float, minimum=0.0, length=2)
    """Fraction of blue (and a bit of green) lost to aging, ramping along the strip."""
    fibre_count: tuple[int, int] = knob((8, 40), int, minimum=0, length=2)
    ink_fade: tuple[float, float] = knob((0.0, 0.35), float, minimum=0.0, length=2)
    """Largest local loss of ink density (worn thermal print head, faded paper)."""
    fold_prob: float = probability(0.4)

    # --- scene and camera --------------------------------------------------------------------------
    max_rotation_deg: float = knob(3.0, minimum=0.0)
    perspective_strength: float = knob(0.025, minimum=0.0)
    """Largest corner displacement of the perspective warp, as a fraction of the paper size."""
    shadow_strength: tuple[float, float] = knob((0.0, 0.35), float, minimum=0.0, length=2)
    """Largest darkening of the soft scene shadow / vignette."""
    blur_sigma: tuple[float, float] = knob((0.0, 0.8), float, minimum=0.0, length=2)
    noise_sigma: tuple[float, float] = knob((1.0, 5.0), float, minimum=0.0, length=2)
    """Std of the additive camera noise, in 0-255 intensity units."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # YAML / Hydra hand ranges over as lists
                object.__setattr__(self, f.name, tuple(value))
        check_fields(self, "SyntheticReceiptConfig.")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"SyntheticReceiptConfig.{f.name}={value}: need low <= high")
        if self.paper_width[0] - 2 * self.paper_side_margin[1] < 200:
            raise ValueError("paper_width minus both side margins must leave >= 200 px for text")

    @classmethod
    def clean(cls, **overrides: object) -> SyntheticReceiptConfig:
        """No geometric warp, blur, camera noise or shadow: pixel-exact boxes for tests and debugging."""
        base: dict[str, object] = {
            "max_rotation_deg": 0.0,
            "perspective_strength": 0.0,
            "shadow_strength": (0.0, 0.0),
            "blur_sigma": (0.0, 0.0),
            "noise_sigma": (0.0, 0.0),
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]
