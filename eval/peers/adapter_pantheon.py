"""Adapter for pantheon-guardrails 0.3.2, run by `worker.py` inside the peer's environment.

API: `pantheon_guardrails.CrisisProtocol().check(text, jurisdiction="US")` returns a `CrisisOutcome` whose
`triggered` is True when one of six English regexes matches (self-harm verbs + "myself", "I want to die",
"suicide/suicidal", "end my life", "no reason to live", "overdose"), with guards against common idioms. The
jurisdiction only picks the help text of the outcome's message; it does not change detection.

at_risk = 1.0 when triggered, else 0.0 (a binary peer: its ranking metrics have one operating point).
"""

from __future__ import annotations

JURISDICTION = "US"


class PantheonAdapter:
    def __init__(self) -> None:
        import pantheon_guardrails
        from pantheon_guardrails import CrisisProtocol

        self.version = getattr(pantheon_guardrails, "__version__", "unknown")
        self.protocol = CrisisProtocol()

    def score(self, texts: list[str]) -> list[dict]:
        return [
            {"at_risk": 1.0 if self.protocol.check(text, jurisdiction=JURISDICTION).triggered else 0.0}
            for text in texts
        ]

    def info(self) -> dict:
        return {"package": "pantheon-guardrails", "version": self.version, "jurisdiction": JURISDICTION}


def load(options: dict) -> PantheonAdapter:
    return PantheonAdapter()
