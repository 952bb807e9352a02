"""Adapter for rrt-advocate 0.1.1 with its [vader] extra, run by `worker.py` inside the peer's environment.

API: `rrt_advocate.CrisisEngine(user_id).assess(text)` returns a `CrisisAssessment` with `crisis_level`
(`CrisisLevel`: stable, elevated, high, critical, emergency) and `confidence_score`, the weighted sum of three
layers (keywords 0.45, VADER sentiment 0.35, message shape 0.20; forced to 1.0 by any self-harm keyword). The
level is that score cut at 0.2 / 0.4 / 0.7 / 0.9. The engine keeps per-session state (a sentiment window, the
previous message's time, word overlap with recent messages), so `reset_session()` (which returns None) is
called before every text: each text is judged alone, as the first message of a session.

at_risk is the level on an even scale, documented in LEVEL_SCORES: stable 0, elevated 0.25, high 0.5,
critical 0.75, emergency 1 (so at_risk >= 0.5 means "high" or above, the level the package says needs active
intervention). The raw `confidence` and `level` come along as details.
"""

from __future__ import annotations

LEVEL_SCORES = {"stable": 0.0, "elevated": 0.25, "high": 0.5, "critical": 0.75, "emergency": 1.0}


class RRTAdapter:
    def __init__(self) -> None:
        import rrt_advocate
        from rrt_advocate import CrisisEngine

        self.version = getattr(rrt_advocate, "__version__", "unknown")
        self.engine = CrisisEngine("sahay-eval")
        # the [vader] extra is what the spec installs; without it the package silently uses a word list
        layer = self.engine._detector._sentiment_layer
        self.sentiment = type(layer._analyzer).__name__ if layer._analyzer is not None else "heuristic"
        self.resets = 0

    def score(self, texts: list[str]) -> list[dict]:
        results = []
        for text in texts:
            self.engine.reset_session()
            self.resets += 1
            assessment = self.engine.assess(text)
            level = assessment.crisis_level.value
            results.append(
                {"at_risk": LEVEL_SCORES[level], "level": level, "confidence": float(assessment.confidence_score)}
            )
        return results

    def info(self) -> dict:
        return {"package": "rrt-advocate", "version": self.version, "sentiment": self.sentiment}

    def stats(self) -> dict:
        return {"resets": self.resets}


def load(options: dict) -> RRTAdapter:
    return RRTAdapter()
