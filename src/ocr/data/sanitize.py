"""Polygon cleaning (checks and repairs), shared by every reader so the rules (and counters) never drift.

Readers parse their format into :class:`RawAnnotation` records and call :func:`sanitize`; what it
fixes or drops is recorded in an :class:`IssueLog` that travels on ``TextSample.meta["issues"]`` to
the collate function's counters and the ``DataQualityCallback``. The rules, in order:

=====================================  ==============================================================
problem                                what happens (counter)
=====================================  ==============================================================
not a list of (x, y) numbers           dropped (``dropped_polygons_unparsable``)
fewer than 3 points                    dropped (``dropped_polygons_too_few_points``)
NaN or +-inf coordinate                dropped (``dropped_polygons_nan``)
self-intersecting, vertices misordered re-ordered along the convex hull and kept as text
(convex hull uses every point)         (``repaired_polygons_self_intersecting``)
self-intersecting, otherwise           its convex hull becomes an *ignore* region: the text is
                                       somewhere in there, so it is masked out of the loss and the
                                       metric rather than guessed (``ignored_polygons_self_intersecting``)
area below ``min_area`` (1 px^2)       dropped: it covers no pixel, so dropping changes no map
                                       (``dropped_polygons_zero_area``)
partly outside the image               clipped to the image box, one polygon per remaining piece
                                       (``clipped_polygons``)
entirely outside the image             dropped (``dropped_polygons_outside_image``)
=====================================  ==============================================================

A dropped polygon whose text is really there (unparsable, NaN, < 3 points) leaves that text
unlabelled; that is why every drop is counted and reported with its file and line, each epoch.
Polygons inside the image that are already valid are returned unchanged (same vertices and order).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash
from shapely.geometry import MultiPoint, Polygon, box
from shapely.geometry.base import BaseGeometry

from ocr.data.image_io import DEFAULT_MAX_PIXELS, ImageReadError, read_image
from ocr.data.sample import TextSample
from ocr.errors import SampleError, UserInputError
from ocr.targets.prepare import as_points as target_points

IGNORE_TRANSCRIPT = "###"
MIN_AREA = 1.0

DROPPED_UNPARSABLE = "dropped_polygons_unparsable"
DROPPED_TOO_FEW_POINTS = "dropped_polygons_too_few_points"
DROPPED_NAN = "dropped_polygons_nan"
DROPPED_ZERO_AREA = "dropped_polygons_zero_area"
DROPPED_OUTSIDE = "dropped_polygons_outside_image"
CLIPPED = "clipped_polygons"
REPAIRED = "repaired_polygons_self_intersecting"
MASKED = "ignored_polygons_self_intersecting"


class IssueLog:
    """Problems found in one sample: counter name -> where each occurred (e.g. ``001.txt:12``)."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, counter: str, where: str) -> None:
        self.items.setdefault(counter, []).append(where)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.items.items()}


@dataclass(frozen=True)
class RawAnnotation:
    """One annotation as the file gave it; ``where`` locates it for reports (file:line, key...)."""

    points: object
    text: str
    where: str


@dataclass
class Annotations:
    """Clean polygons, (N, 2) float32, with their texts and ignore flags."""

    polygons: list[np.ndarray] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    ignore: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class PolygonResult:
    """What :func:`sanitize_polygon` made of one polygon: 0..n pieces and the counters it hit."""

    polygons: list[np.ndarray]
    events: tuple[str, ...] = ()
    ignore: bool = False


def is_ignore_text(text: str) -> bool:
    """``###`` marks unreadable text in ICDAR/SROIE annotations: a "don't care" region."""
    return text.strip() == IGNORE_TRANSCRIPT


def _exterior(geom: Polygon) -> np.ndarray:
    return np.asarray(geom.exterior.coords, dtype=np.float64)[:-1]


def _repair(pts: np.ndarray, min_area: float) -> tuple[np.ndarray | None, str | None]:
    """Invalid (self-intersecting or degenerate) ring -> convex hull, re-ordered or masked."""
    hull = MultiPoint([tuple(p) for p in pts]).convex_hull
    if not isinstance(hull, Polygon) or hull.area < min_area:
        return None, DROPPED_ZERO_AREA
    hull_pts = _exterior(hull)
    if len(hull_pts) == len(np.unique(pts, axis=0)):
        # Every vertex is on the hull: the annotator clicked the corners in the wrong order.
        start = int(np.argmin(np.abs(hull_pts - pts[0]).sum(axis=1)))
        return np.roll(hull_pts, -start, axis=0), REPAIRED
    return hull_pts, MASKED


def _pieces(geom: BaseGeometry, min_area: float) -> list[np.ndarray]:
    parts = getattr(geom, "geoms", [geom])
    return [_exterior(g) for g in parts if isinstance(g, Polygon) and g.area >= min_area]


def sanitize_polygon(points: object, image_hw: tuple[int, int], min_area: float = MIN_AREA) -> PolygonResult:
    """Apply the module's rules to one polygon in pixel coordinates of an (H, W) image."""
    pts = target_points(points)
    if pts is None:
        return PolygonResult([], (DROPPED_UNPARSABLE,))
    pts = pts.astype(np.float64, copy=False)  # (N, 2) float64 from [[x, y], ...] or a flat [x1, y1, ...]
    if len(pts) < 3:
        return PolygonResult([], (DROPPED_TOO_FEW_POINTS,))
    if not np.isfinite(pts).all():
        return PolygonResult([], (DROPPED_NAN,))
    events: list[str] = []
    ignore = False
    poly = Polygon(pts)
    if not poly.is_valid:
        repaired, event = _repair(pts, min_area)
        if repaired is None:
            return PolygonResult([], (DROPPED_ZERO_AREA,))
        assert event is not None
        events.append(event)
        ignore = event == MASKED
        pts, poly = repaired, Polygon(repaired)
    if poly.area < min_area:
        return PolygonResult([], (DROPPED_ZERO_AREA,))
    h, w = image_hw
    if pts.min() >= 0 and pts[:, 0].max() <= w and pts[:, 1].max() <= h:
        return PolygonResult([pts.astype(np.float32)], tuple(events), ignore)
    pieces = _pieces(poly.intersection(box(0, 0, w, h)), min_area)
    if not pieces:
        return PolygonResult([], (*events, DROPPED_OUTSIDE))
    return PolygonResult([p.astype(np.float32) for p in pieces], (*events, CLIPPED), ignore)


def sanitize(
    annotations: Iterable[RawAnnotation],
    image_hw: tuple[int, int],
    issues: IssueLog,
    source: str = "annotations",
    min_area: float = MIN_AREA,
) -> Annotations:
    """Clean every annotation of one image; problems go to ``issues`` (counter -> locations).

    When there are annotations and not one of them parses, the file is in some other format: that
    raises :class:`SampleError` (``bad_gt``) instead of silently training on a receipt with no text.
    """
    annotations = list(annotations)
    results = [sanitize_polygon(ann.points, image_hw, min_area) for ann in annotations]
    if results and all(r.events == (DROPPED_UNPARSABLE,) for r in results):
        raise SampleError("bad_gt", source, "no annotation parses; check the file's format")
    out = Annotations()
    for ann, result in zip(annotations, results, strict=True):
        for event in result.events:
            issues.add(event, ann.where)
        ignore = result.ignore or is_ignore_text(ann.text)
        for polygon in result.polygons:
            out.polygons.append(polygon)
            out.texts.append(ann.text)
            out.ignore.append(ignore)
    return out


# -- reader helpers: the same checks and messages for every annotated split ---------------------


def require_dir(path: Path, what: str, fix: str) -> Path:
    """The folder, or a :class:`UserInputError` naming it and the fix."""
    if not path.exists():
        raise UserInputError(f"{what} {path} does not exist; {fix}")
    if not path.is_dir():
        raise UserInputError(f"{what} {path} is not a folder; {fix}")
    return path


def require_file(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise UserInputError(f"{what} {path} {'is not a file' if path.exists() else 'does not exist'}; {fix}")
    return path


def file_identity(path: Path) -> tuple[str, int, str]:
    """(absolute path, size, xxh3-128 of the bytes): what a cache key needs to never serve a stale
    file. Content, not ``mtime``: ``cp -p``, ``rsync -a``, ``tar x`` and ``touch -r`` keep the
    mtime of an edited file; a hash of its bytes cannot be kept. ``(path, -1, "missing")`` when the
    file does not exist; any other ``OSError`` (a symlink loop, no permission) is raised.
    """
    resolved = os.path.realpath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return (resolved, -1, "missing")
    return (resolved, len(data), xxhash.xxh3_128_hexdigest(data))


def build_sample(
    image_path: Path,
    raw: list[RawAnnotation],
    issues: IssueLog,
    source: str,
    meta: Mapping[str, object],
    expected_hw: tuple[int, int] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> TextSample:
    """Decode the image (EXIF orientation applied: annotations are in the displayed frame) and clean
    the annotations against its size.

    Raises :class:`SampleError`: the image's own reason when it can't be decoded (``missing_image``,
    ``symlink_loop``, ``image_too_large`` over ``max_pixels``, ``unreadable_image``),
    ``size_mismatch`` when the annotation file states another size (its polygons would be misplaced).
    """
    try:
        image = read_image(image_path, max_pixels)
    except ImageReadError as exc:
        raise SampleError(exc.reason, image_path.name, str(exc).split(": ", 1)[-1]) from None
    hw = (int(image.shape[0]), int(image.shape[1]))
    if expected_hw is not None and tuple(expected_hw) != hw:
        raise SampleError(
            "size_mismatch",
            image_path.name,
            f"{source} gives {expected_hw[1]}x{expected_hw[0]} (WxH) but the image is {hw[1]}x{hw[0]} after "
            "EXIF orientation; fix the annotation or re-export the image",
        )
    ann = sanitize(raw, hw, issues, source)
    meta = {**meta, "path": str(image_path), "issues": issues.as_dict()}
    return TextSample(image, ann.polygons, ann.texts, ann.ignore, image_path.name, meta)


__all__ = [
    "CLIPPED",
    "DROPPED_NAN",
    "DROPPED_OUTSIDE",
    "DROPPED_TOO_FEW_POINTS",
    "DROPPED_UNPARSABLE",
    "DROPPED_ZERO_AREA",
    "IGNORE_TRANSCRIPT",
    "MASKED",
    "MIN_AREA",
    "REPAIRED",
    "Annotations",
    "IssueLog",
    "PolygonResult",
    "RawAnnotation",
    "build_sample",
    "file_identity",
    "is_ignore_text",
    "require_dir",
    "require_file",
    "sanitize",
    "sanitize_polygon",
]
