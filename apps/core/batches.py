"""Deleting many rows without holding locks for long: batches of N rows, each its own short
transaction, until nothing is left or a time budget is spent (the rest is the next run's)."""

import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet


@dataclass
class BatchDeletion:
    rows: Counter = field(default_factory=Counter)  # rows deleted, by model label (cascades included)
    batches: int = 0
    complete: bool = True  # False when the time budget ran out with rows left

    def add(self, other: "BatchDeletion") -> None:
        self.rows.update(other.rows)
        self.batches += other.batches
        self.complete = self.complete and other.complete


def rows_delete_in_batches(*, queryset: QuerySet, order_by: tuple[str, ...], batch_size: int,
                           deadline: float) -> BatchDeletion:
    """Delete what `queryset` selects, `batch_size` rows (in `order_by` order) per transaction,
    until none is left or time.monotonic() passes `deadline`.

    Each batch locks the rows it takes and skips rows another transaction holds (a worker
    recording a send): those stay for a later run. The filter is applied again at the delete, so
    a row that changed since it was read is not deleted on the strength of its old state.
    """
    result = BatchDeletion()
    while True:
        if time.monotonic() >= deadline:
            result.complete = False
            return result
        with transaction.atomic():
            ids = list(queryset.select_for_update(skip_locked=True, of=("self",)).order_by(*order_by)
                       .values_list("pk", flat=True)[:batch_size])
            if not ids:
                return result
            _, per_model = queryset.filter(pk__in=ids).delete()
        result.rows.update({label: count for label, count in per_model.items() if count})
        result.batches += 1
        if len(ids) < batch_size:
            return result
