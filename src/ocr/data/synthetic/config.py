"""Every knob of the synthetic receipt generator in one frozen record, so a seed + config names one image."""

from __future__ import annotations

from dataclasses import dataclass, fields

IntRange = tuple[int, int]
FloatRange = tuple[float, float]


@dataclass(frozen=True)
class SyntheticReceiptConfig:
    """Sizes, content amounts and augmentation strengths of one synthetic receipt.

    Ranges are inclusive ``(low, high)`` pairs sampled uniformly per receipt. Pixel sizes are in the
    final image (before any training resize). The defaults give tall, narrow receipts (paper ~360-520
    px wide, ~600-1100 px tall) whose text boxes are mostly 12-24 px tall, so text stays >= ~7 px
    after resizing the longest side to 640.
    """

    # --- paper and layout -------------------------------------------------------------------------
    paper_width: IntRange = (360, 520)
    """Width of the paper strip in pixels; the height follows the content."""
    paper_side_margin: IntRange = (14, 30)
    """Blank paper left/right of the text column (real printers never print to the edge)."""
    paper_top_margin: IntRange = (18, 48)
    paper_bottom_margin: IntRange = (24, 64)
    background_margin: IntRange = (12, 56)
    """Table visible around the (rotated, warped) paper on every side, so no text is ever cut."""
    line_spacing: FloatRange = (1.2, 1.45)
    """Baseline-to-baseline distance as a multiple of the line's largest font size."""

    # --- fonts (pixel em sizes) --------------------------------------------------------------------
    body_font_size: IntRange = (17, 21)
    title_font_size: IntRange = (26, 36)
    subtitle_font_size: IntRange = (14, 17)
    """Address/phone/footer lines: smaller than the body, like real receipts."""
    total_font_size_boost: IntRange = (0, 6)
    """TOTAL line is the body size plus this many pixels (bold)."""
    proportional_body_prob: float = 0.2
    """Chance the body uses DejaVuSans instead of the usual monospace printer font."""

    # --- content amounts ---------------------------------------------------------------------------
    header_lines: IntRange = (2, 4)
    """Address / phone / web lines under the store name."""
    item_lines: IntRange = (4, 13)
    quantity_line_prob: float = 0.3
    """Chance an item gets an extra ``2 x 3.49`` line under it."""
    column_header_prob: float = 0.35
    """Chance of a ``QTY  ITEM  PRICE`` column header above the items."""
    footer_lines: IntRange = (1, 3)
    barcode_prob: float = 0.4
    """Chance of a barcode (ink without a box: a hard negative) at the bottom."""

    # --- boxes -------------------------------------------------------------------------------------
    box_padding: float = 1.0
    """Pixels added around the ink-tight box on every side (annotators never cut glyphs)."""
    min_box_height: float = 6.0
    """Thin runs (``-----``) are grown to this height: sub-5 px polygons vanish after DBNet shrinking."""

    # --- paper appearance --------------------------------------------------------------------------
    paper_noise: FloatRange = (2.0, 7.0)
    """Std of the paper grain, in 0-255 intensity units."""
    yellowing: FloatRange = (0.0, 0.14)
    """Fraction of blue (and a bit of green) lost to aging, ramping along the strip."""
    fibre_count: IntRange = (8, 40)
    ink_fade: FloatRange = (0.0, 0.35)
    """Largest local loss of ink density (worn thermal print head, faded paper)."""
    fold_prob: float = 0.4

    # --- scene and camera --------------------------------------------------------------------------
    max_rotation_deg: float = 3.0
    perspective_strength: float = 0.025
    """Largest corner displacement of the perspective warp, as a fraction of the paper size."""
    shadow_strength: FloatRange = (0.0, 0.35)
    """Largest darkening of the soft scene shadow / vignette."""
    blur_sigma: FloatRange = (0.0, 0.8)
    noise_sigma: FloatRange = (1.0, 5.0)
    """Std of the additive camera noise, in 0-255 intensity units."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # YAML / Hydra hand ranges over as lists
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if isinstance(value, tuple):
                if len(value) != 2:
                    raise ValueError(f"SyntheticReceiptConfig.{f.name}={value}: need a (low, high) pair")
                lo, hi = value
                if lo > hi or lo < 0:
                    raise ValueError(f"SyntheticReceiptConfig.{f.name}={value}: need 0 <= low <= high")
            elif isinstance(value, float) and value < 0:
                raise ValueError(f"SyntheticReceiptConfig.{f.name}={value} must be >= 0")
        probabilities = ("proportional_body_prob", "quantity_line_prob", "column_header_prob")
        for name in (*probabilities, "barcode_prob", "fold_prob"):
            if getattr(self, name) > 1:
                raise ValueError(f"SyntheticReceiptConfig.{name} is a probability (<= 1)")
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
