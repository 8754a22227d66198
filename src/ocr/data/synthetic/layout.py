"""Where each run goes on the paper: fonts per style, line heights, left/right/center alignment.

Alignment uses the font's advance box, like a receipt printer that right-aligns character cells, so
every right-aligned price ends at the same x. The ground-truth boxes are measured later from ink.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ocr.data.synthetic.config import SyntheticReceiptConfig
from ocr.data.synthetic.content import Align, Columns, Line, ReceiptContent, Run, Style
from ocr.data.synthetic.fonts import Font, FontFace, get_font


@dataclass(frozen=True)
class LayoutParams:
    """Per-receipt sizes, sampled once so content can be fitted to the column before placement."""

    paper_width: int
    side_margin: int
    top_margin: int
    bottom_margin: int
    line_spacing: float
    faces: dict[Style, FontFace]
    sizes: dict[Style, int]

    @property
    def column(self) -> tuple[int, int]:
        """Left and right x of the text column on the paper."""
        return self.side_margin, self.paper_width - self.side_margin

    def font(self, style: Style) -> Font:
        return get_font(self.faces[style], self.sizes[style])


@dataclass(frozen=True)
class PlacedRun:
    """A run with its font and pen position (left x of the advance box, baseline y) on the paper."""

    text: str
    kind: str
    font: Font
    font_size: int
    x: int
    baseline: int


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    runs: tuple[PlacedRun, ...]
    barcode: tuple[int, int, int, int] | None
    """Barcode rectangle (x0, y0, x1, y1) on the paper, or None."""


def sample_params(rnd: random.Random, cfg: SyntheticReceiptConfig) -> LayoutParams:
    body = rnd.randint(*cfg.body_font_size)
    proportional = rnd.random() < cfg.proportional_body_prob
    faces = {
        Style.TITLE: rnd.choice(
            (FontFace.SANS_BOLD, FontFace.SANS_BOLD, FontFace.SERIF_BOLD, FontFace.MONO_BOLD)
        ),
        Style.SUBTITLE: rnd.choice((FontFace.MONO, FontFace.SANS)),
        Style.BODY: FontFace.SANS if proportional else FontFace.MONO,
        Style.BODY_BOLD: FontFace.SANS_BOLD if proportional else FontFace.MONO_BOLD,
        Style.TOTAL: FontFace.SANS_BOLD if proportional else FontFace.MONO_BOLD,
    }
    sizes = {
        Style.TITLE: rnd.randint(*cfg.title_font_size),
        Style.SUBTITLE: min(body, rnd.randint(*cfg.subtitle_font_size)),
        Style.BODY: body,
        Style.BODY_BOLD: body,
        Style.TOTAL: body + rnd.randint(*cfg.total_font_size_boost),
    }
    return LayoutParams(
        paper_width=rnd.randint(*cfg.paper_width),
        side_margin=rnd.randint(*cfg.paper_side_margin),
        top_margin=rnd.randint(*cfg.paper_top_margin),
        bottom_margin=rnd.randint(*cfg.paper_bottom_margin),
        line_spacing=rnd.uniform(*cfg.line_spacing),
        faces=faces,
        sizes=sizes,
    )


def _cell(font: Font) -> float:
    """Width of one character cell; uppercase-heavy text needs the wide 'M' in proportional faces."""
    return max(float(font.getlength("0")), 0.85 * float(font.getlength("M")))


def estimate_columns(params: LayoutParams) -> Columns:
    left, right = params.column
    width = right - left

    def cols(style: Style) -> int:
        return max(4, int(width // _cell(params.font(style))))

    return Columns(
        body=cols(Style.BODY), subtitle=cols(Style.SUBTITLE), title=cols(Style.TITLE), total=cols(Style.TOTAL)
    )


def _extent(font: Font, text: str) -> tuple[int, int]:
    left, _, right, _ = font.getbbox(text, anchor="ls")
    return int(left), int(right)


def _fit(font: Font, text: str, max_width: float) -> str:
    """Drop trailing words (then characters) until the run fits: content estimates are only estimates."""
    while text:
        left, right = _extent(font, text)
        if right - left <= max_width:
            return text
        text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
        text = text.rstrip()
    return text


def _place_line(line: Line, params: LayoutParams, baseline: int) -> list[PlacedRun]:
    font = params.font(line.style)
    size = params.sizes[line.style]
    left, right = params.column
    cell = float(font.getlength("0"))
    gap = max(cell, 6.0)
    placed: list[PlacedRun] = []

    limit = float(right)
    for run in (r for r in line.runs if r.align is Align.RIGHT):
        text = _fit(font, run.text, right - left)
        _, r_edge = _extent(font, text)
        x = right - r_edge
        placed.append(PlacedRun(text, run.kind, font, size, x, baseline))
        limit = min(limit, x - gap)

    lefts: list[Run] = sorted((r for r in line.runs if r.align is Align.LEFT), key=lambda r: r.indent)
    starts = [left + round(r.indent * cell) for r in lefts]
    for i, run in enumerate(lefts):
        end = starts[i + 1] - gap if i + 1 < len(lefts) else limit
        text = _fit(font, run.text, end - starts[i])
        if text:
            placed.append(PlacedRun(text, run.kind, font, size, starts[i], baseline))

    for run in (r for r in line.runs if r.align is Align.CENTER):
        text = _fit(font, run.text, right - left)
        if text:
            l_edge, r_edge = _extent(font, text)
            x = round((left + right) / 2 - (l_edge + r_edge) / 2)
            placed.append(PlacedRun(text, run.kind, font, size, x, baseline))
    return [p for p in placed if p.text]


def place(content: ReceiptContent, params: LayoutParams, rnd: random.Random) -> Layout:
    """Stack the lines top to bottom; the paper height is whatever the content needs."""
    y = float(params.top_margin)
    runs: list[PlacedRun] = []
    for line in content.lines:
        size = params.sizes[line.style]
        spacing = params.line_spacing
        if line.style is Style.SUBTITLE:  # address blocks are set tighter, but boxes must not overlap
            spacing = max(1.15, 0.9 * spacing)
        elif line.style is Style.TITLE:
            spacing = max(spacing, 1.3)
        height = size * spacing
        y += line.gap_before * height
        # Centre the ink (~0.76 em above to ~0.24 em below the baseline) in the line's slot.
        baseline = round(y + (height - size) / 2 + 0.76 * size)
        runs.extend(_place_line(line, params, baseline))
        y += height
    barcode = None
    if content.barcode:
        left, right = params.column
        bw = min(right - left, round(rnd.uniform(0.45, 0.8) * (right - left)))
        bh = rnd.randint(32, 60)
        x0 = (params.paper_width - bw) // 2
        y0 = round(y + rnd.uniform(0.3, 1.0) * params.sizes[Style.BODY])
        barcode = (x0, y0, x0 + bw, y0 + bh)
        y = y0 + bh
    height = round(y) + params.bottom_margin
    return Layout(params.paper_width, height, tuple(runs), barcode)
