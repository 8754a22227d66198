"""OrderedRows: predict rows leave in input order, each as soon as every earlier one is done."""

from __future__ import annotations

import numpy as np

from ocr.inference.rows import OrderedRows, Row

QUAD = [np.array([[0, 0], [4, 0], [4, 2], [0, 2]], np.float32)]


def _queued(rows: OrderedRows, first: int, count: int, unreadable: set[int]) -> None:
    """A batch of dataset indices ``first..first+count-1``; readable ones wait on seq = index."""
    batch = []
    for index in range(first, first + count):
        if index in unreadable:
            batch.append(Row(index, unreadable=True))
        else:
            row = Row(index, name=f"{index}.png")
            rows.waiting[index] = row
            batch.append(row)
    rows.add_batch(reversed(batch))  # the collate function puts unreadable images last


def test_rows_leave_in_index_order_once_every_earlier_row_is_done() -> None:
    rows = OrderedRows()
    _queued(rows, 0, 4, unreadable={1})
    assert rows.release() == []  # row 0 still in the pool
    rows.finish([(2, QUAD, [0.9])])  # done out of order: held back behind row 0
    assert rows.release() == []
    rows.finish([(0, [], [])])
    released = rows.release()
    assert [(r["index"], r["unreadable"]) for r in released] == [(0, False), (1, True), (2, False)]
    assert released[2]["polygons"] is not None and len(released[2]["polygons"]) == 1
    _queued(rows, 4, 2, unreadable={5})
    assert rows.release() == [] and len(rows) == 3  # 3, 4 waiting; 5 (unreadable) behind them
    rows.finish([(3, [], []), (4, [], [])])
    assert [r["index"] for r in rows.release()] == [3, 4, 5]
    assert len(rows) == 0 and not rows.waiting


def test_leading_unreadable_rows_leave_at_once() -> None:
    rows = OrderedRows()
    _queued(rows, 0, 3, unreadable={0, 1})
    assert [r["index"] for r in rows.release()] == [0, 1]
