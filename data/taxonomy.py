"""The five labels, their precedence and the signals products derive from them.

One label per text. When several apply, the first in `LABELS` wins (intent beats promotion beats ...).
Products do not use the label directly but three derived signals:
at_risk = P(ideation) + P(intent), urgent = P(intent), violating = P(promotion).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

LABELS: tuple[str, ...] = ("intent", "promotion", "ideation", "informational", "none")
"""Fine labels in precedence order: the first that applies wins."""

LABEL_INDEX: dict[str, int] = {label: i for i, label in enumerate(LABELS)}

SIGNALS: dict[str, frozenset[str]] = {
    "at_risk": frozenset({"ideation", "intent"}),
    "urgent": frozenset({"intent"}),
    "violating": frozenset({"promotion"}),
}
"""Each derived signal is the probability mass of a subset of labels."""


class UnknownLabelError(ValueError):
    """A label outside the taxonomy."""


def check_label(label: str) -> str:
    """Return `label` if it is one of LABELS, else raise with the allowed values."""
    if label not in LABEL_INDEX:
        raise UnknownLabelError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
    return label


def canonical_label_set(labels: Iterable[str]) -> list[str]:
    """A validated, duplicate-free label set in precedence order (so equal sets compare equal)."""
    unique = {check_label(label) for label in labels}
    if not unique:
        raise UnknownLabelError("a label set needs at least one label")
    return sorted(unique, key=LABEL_INDEX.__getitem__)


def resolve(applicable: Iterable[str]) -> str:
    """The single label for a text to which all of `applicable` apply (precedence rule)."""
    return canonical_label_set(applicable)[0]


def derive_signals(probs: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
    """at_risk / urgent / violating from per-label probabilities (a mapping or a vector in LABELS order)."""
    if not isinstance(probs, Mapping):
        if len(probs) != len(LABELS):
            raise ValueError(f"expected {len(LABELS)} probabilities in the order {LABELS}, got {len(probs)}")
        probs = dict(zip(LABELS, probs, strict=True))
    return {name: float(sum(probs[label] for label in members)) for name, members in SIGNALS.items()}


def signal_truth(label_set: Iterable[str], signal: str) -> bool | None:
    """Whether a label set decides a signal: True if every allowed label is in it, False if none is,
    None when the set straddles it (such items are left out of that signal's metrics)."""
    members = SIGNALS[signal]
    allowed = set(label_set)
    if allowed <= members:
        return True
    if not allowed & members:
        return False
    return None
