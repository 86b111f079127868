"""Every row removed at any step, with the step, the reason and where it came from."""

from __future__ import annotations

from collections import Counter
from typing import Any

# A quarantined row keeps at most this much of a long field, so a 10 MB line does not bloat the file.
MAX_FIELD_CHARS = 2000


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[:MAX_FIELD_CHARS] + f"... [{len(value) - MAX_FIELD_CHARS} more characters]"
    if isinstance(value, bytes):
        return _shorten(value.decode("utf-8", errors="backslashreplace"))
    if isinstance(value, dict):
        return {str(k): _shorten(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shorten(v) for v in value[:200]]
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


class Quarantine:
    """Collects removed rows; ``counts`` says how many each step removed."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def add(self, step: str, reason: str, source: str, row: Any) -> None:
        self.rows.append({"step": step, "reason": reason, "source": source, "row": _shorten(row)})
        self.counts[step] += 1

    def __len__(self) -> int:
        return len(self.rows)

    def by_step(self, step: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["step"] == step]
