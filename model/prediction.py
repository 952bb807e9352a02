"""What `RiskClassifier.predict` returns for one text."""

from __future__ import annotations

from dataclasses import dataclass, field

from model.explain import Span


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    at_risk: float
    urgent: float
    violating: float
    lang: str
    model_version: str
    spans: list[Span] = field(default_factory=list)
    """Words that most raised the top signal (at_risk or violating), as offsets into the original text."""
    top_signal: str = "at_risk"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "probabilities": self.probabilities,
            "at_risk": self.at_risk,
            "urgent": self.urgent,
            "violating": self.violating,
            "lang": self.lang,
            "top_signal": self.top_signal,
            "spans": [s.to_dict() for s in self.spans],
            "model_version": self.model_version,
        }
