"""What a receipt says, line by line, before any pixel exists: text, alignment and font style.

Content only depends on a ``random.Random`` and the column budget, so changing augmentation settings
never changes the words of a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from ocr.data.synthetic import vocab
from ocr.data.synthetic.config import SyntheticReceiptConfig


class Align(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    CENTER = "center"


class Style(StrEnum):
    """Font role of a whole line; the layout maps it to a face and pixel size per receipt."""

    TITLE = "title"
    SUBTITLE = "subtitle"
    BODY = "body"
    BODY_BOLD = "body_bold"
    TOTAL = "total"


@dataclass(frozen=True)
class Run:
    """One contiguous run of text: exactly one ground-truth box (SROIE-style)."""

    text: str
    kind: str
    align: Align
    indent: int = 0
    """Left-aligned runs start this many character cells right of the text column."""


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]
    style: Style = Style.BODY
    gap_before: float = 0.0
    """Extra blank space above the line, in units of the line height."""


@dataclass(frozen=True)
class ReceiptContent:
    lines: tuple[Line, ...]
    barcode: bool


@dataclass(frozen=True)
class Columns:
    """How many character cells fit in the text column for each style (estimated by the layout)."""

    body: int
    subtitle: int
    title: int
    total: int


def _money(value: float, currency: str) -> str:
    return f"{currency}{value:.2f}"


def _separator(rnd: random.Random, width: int) -> Line:
    char = rnd.choice(("-", "-", "=", "*", "- "))
    text = (char * width)[:width].rstrip()
    return Line((Run(text, "separator", Align.CENTER),), Style.BODY)


def _casing(rnd: random.Random, title_case: bool, text: str) -> str:
    return text.title() if title_case and rnd.random() < 0.9 else text


def _store_name(rnd: random.Random) -> str:
    name = f"{rnd.choice(vocab.STORE_FIRST)} {rnd.choice(vocab.STORE_LAST)}"
    if rnd.random() < 0.3:
        name = (
            rnd.choice(vocab.STORE_LAST) if rnd.random() < 0.2 else name.split()[0] + rnd.choice(("", "'S"))
        )
        name = name if len(name) > 3 else f"{name} {rnd.choice(vocab.STORE_LAST)}"
    return name


def _header(rnd: random.Random, cfg: SyntheticReceiptConfig, cols: Columns, store: str) -> list[Line]:
    lines = [Line((Run(store[: cols.title], "title", Align.CENTER),), Style.TITLE)]
    suffix = rnd.choice(vocab.STORE_SUFFIX)
    if suffix:
        lines.append(Line((Run(f"{store.split()[0]} {suffix}", "header", Align.CENTER),), Style.SUBTITLE))
    street = f"{rnd.randint(1, 9999)} {rnd.choice(vocab.STREETS)} {rnd.choice(vocab.STREET_TYPES)}"
    city = f"{rnd.choice(vocab.CITIES)}, {rnd.choice(vocab.REGIONS)} {rnd.randint(10000, 99999)}"
    phone = rnd.choice(("TEL: ", "Tel ", "PHONE ", "")) + (
        f"({rnd.randint(200, 999)}) {rnd.randint(200, 999)}-{rnd.randint(0, 9999):04d}"
    )
    web = "WWW." + store.replace(" ", "").replace("'", "") + ".COM"
    optional = [city, phone, web, f"GST REG NO: {rnd.randint(10**9, 10**10 - 1)}"]
    count = rnd.randint(*cfg.header_lines)
    texts = [street, *optional[: max(0, count - 1)]]
    lines.extend(Line((Run(t[: cols.subtitle], "header", Align.CENTER),), Style.SUBTITLE) for t in texts)
    return lines


def _meta(rnd: random.Random) -> list[Line]:
    y, m, d = rnd.randint(2015, 2025), rnd.randint(1, 12), rnd.randint(1, 28)
    date = rnd.choice((f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}"))
    hh, mm = rnd.randint(7, 22), rnd.randint(0, 59)
    time = (
        f"{hh:02d}:{mm:02d}"
        if rnd.random() < 0.6
        else f"{(hh - 1) % 12 + 1:02d}:{mm:02d} {'PM' if hh >= 12 else 'AM'}"
    )
    date_label = rnd.choice(("", "DATE: ", "Date "))
    lines = [Line((Run(date_label + date, "meta", Align.LEFT), Run(time, "meta", Align.RIGHT)))]
    if rnd.random() < 0.7:
        cashier = f"{rnd.choice(('CASHIER:', 'Cashier', 'SERVER:'))} {rnd.choice(vocab.CASHIERS)}"
        lines.append(
            Line(
                (Run(cashier, "meta", Align.LEFT), Run(f"REG {rnd.randint(1, 12):02d}", "meta", Align.RIGHT))
            )
        )
    if rnd.random() < 0.6:
        lines.append(Line((Run(f"RECEIPT #{rnd.randint(1, 999999):06d}", "meta", Align.LEFT),)))
    return lines


def _item_name(rnd: random.Random, max_chars: int, title_case: bool) -> str:
    parts = [rnd.choice(vocab.ITEM_NOUNS)]
    if rnd.random() < 0.6:
        parts.insert(0, rnd.choice(vocab.ITEM_ADJECTIVES))
    unit = rnd.choice(vocab.ITEM_UNITS)
    if unit:
        parts.append(unit)
    name = " ".join(parts)
    while len(name) > max_chars and " " in name:
        name = name.rsplit(" ", 1)[0]
    return _casing(rnd, title_case, name[:max_chars])


def _items(
    rnd: random.Random, cfg: SyntheticReceiptConfig, cols: Columns, currency: str, title_case: bool
) -> tuple[list[Line], float, int]:
    lines: list[Line] = []
    with_qty_column = rnd.random() < cfg.column_header_prob
    indent = 5 if with_qty_column else 0
    if with_qty_column:
        lines.append(
            Line(
                (
                    Run("QTY", "column", Align.LEFT),
                    Run("ITEM", "column", Align.LEFT, indent),
                    Run("PRICE" if rnd.random() < 0.5 else "AMOUNT", "column", Align.RIGHT),
                ),
                Style.BODY_BOLD,
            )
        )
    subtotal, count = 0.0, 0
    for _ in range(rnd.randint(*cfg.item_lines)):
        qty = rnd.choice((1, 1, 1, 1, 2, 2, 3, 4, 6))
        unit_price = round(rnd.uniform(0.29, 39.99), 2)
        total = round(qty * unit_price, 2)
        price = _money(total, currency) + (rnd.choice(("", " A", " T", " F")) if rnd.random() < 0.25 else "")
        name = _item_name(rnd, max(4, cols.body - indent - len(price) - 2), title_case)
        runs = [Run(name, "item", Align.LEFT, indent), Run(price, "price", Align.RIGHT)]
        if with_qty_column:
            runs.insert(0, Run(str(qty), "qty", Align.LEFT))
        lines.append(Line(tuple(runs)))
        if not with_qty_column and (qty > 1 or rnd.random() < cfg.quantity_line_prob):
            if rnd.random() < 0.2:
                kg = rnd.uniform(0.1, 2.5)
                qty_text = f"{kg:.3f} kg @ {_money(unit_price, currency)}/kg"
            else:
                qty_text = f"{qty} {rnd.choice(('x', '@', 'X'))} {_money(unit_price, currency)}"
            lines.append(Line((Run(qty_text, "qty", Align.LEFT, 2),), Style.SUBTITLE))
        subtotal += total
        count += qty
    return lines, round(subtotal, 2), count


def _totals(rnd: random.Random, subtotal: float, currency: str, title_case: bool) -> list[Line]:
    def row(label: str, value: float, style: Style = Style.BODY, kind: str = "total") -> Line:
        return Line(
            (
                Run(_casing(rnd, title_case, label), kind, Align.LEFT),
                Run(_money(value, currency), "price", Align.RIGHT),
            ),
            style,
        )

    rate = rnd.choice((5.0, 6.0, 7.25, 8.0, 8.25, 10.0, 6.5))
    tax = round(subtotal * rate / 100, 2)
    total = round(subtotal + tax, 2)
    lines = [row("SUBTOTAL", subtotal), row(f"TAX {rate:g}%", tax), row("TOTAL", total, Style.TOTAL)]
    payment = rnd.choice(vocab.PAYMENTS)
    if payment == "CASH":
        paid = float(max(total, round(total + rnd.choice((0, 1, 5, 10, 20)), 0)))
        lines.append(row("CASH", paid, kind="payment"))
        lines.append(row("CHANGE", round(paid - total, 2), kind="payment"))
    else:
        lines.append(row(f"{payment} ****{rnd.randint(0, 9999):04d}", total, kind="payment"))
        if rnd.random() < 0.5:
            lines.append(
                Line(
                    (Run(f"AUTH CODE: {rnd.randint(0, 999999):06d}", "payment", Align.LEFT),), Style.SUBTITLE
                )
            )
    return lines


def _footer(rnd: random.Random, cfg: SyntheticReceiptConfig, cols: Columns, count: int) -> list[Line]:
    lines = []
    if rnd.random() < 0.5:
        lines.append(Line((Run(f"ITEMS SOLD: {count}", "footer", Align.LEFT),), Style.SUBTITLE))
    for text in rnd.sample(vocab.FOOTERS, rnd.randint(*cfg.footer_lines)):
        lines.append(Line((Run(text[: cols.subtitle].rstrip(), "footer", Align.CENTER),), Style.SUBTITLE))
    return lines


def generate_content(rnd: random.Random, cfg: SyntheticReceiptConfig, cols: Columns) -> ReceiptContent:
    """Sample header, items, totals and footer with consistent arithmetic (total = subtotal + tax)."""
    currency = rnd.choice(("", "", "", "$", "$", "€", "£", "RM"))
    title_case = rnd.random() < 0.2
    sep_width = cols.body if rnd.random() < 0.7 else max(8, cols.body * 3 // 4)

    lines: list[Line] = _header(rnd, cfg, cols, _store_name(rnd))
    lines.append(_separator(rnd, sep_width))
    lines.extend(_meta(rnd))
    lines.append(_separator(rnd, sep_width))
    items, subtotal, count = _items(rnd, cfg, cols, currency, title_case)
    lines.extend(items)
    lines.append(_separator(rnd, sep_width))
    lines.extend(_totals(rnd, subtotal, currency, title_case))
    if rnd.random() < 0.6:
        lines.append(_separator(rnd, sep_width))
    footer = _footer(rnd, cfg, cols, count)
    if footer:
        first = footer[0]
        footer[0] = Line(first.runs, first.style, gap_before=0.5)
    lines.extend(footer)
    return ReceiptContent(tuple(lines), barcode=rnd.random() < cfg.barcode_prob)
