"""How much a model's decisions move when the test texts are perturbed the way users write (`eval/perturb.py`).

For each perturbation, on the rows it applies to: the share of texts it actually changed, how often the top
label and the at_risk decision flip, and how much macro-F1 and at_risk F1 drop (original minus perturbed),
overall and per language. The model is any callable, so peers that only give at_risk scores fit too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from data.taxonomy import LABEL_INDEX, LABELS
from eval.perturb import PERTURBATIONS
from model.labels import label_masks, signal_scores
from model.metrics import label_metrics, signal_metrics

Predict = Callable[[list[str]], np.ndarray]


def _rng(seed: int, name: str, row: int) -> random.Random:
    """One generator per (seed, perturbation, row): a row's perturbation does not depend on the other rows."""
    return random.Random(f"{seed}/{name}/{row}")


def _at_risk_f1(scores: np.ndarray, masks: np.ndarray, threshold: float) -> float | None:
    """model.metrics' at_risk F1 for bare scores: the at_risk mass goes on "ideation", the rest on "none"."""
    probs = np.zeros((len(scores), len(LABELS)))
    probs[:, LABEL_INDEX["ideation"]], probs[:, LABEL_INDEX["none"]] = scores, 1 - scores
    figures = signal_metrics(probs, masks, {"at_risk": threshold})["at_risk"]
    return figures["f1"] if figures["n"] else None


def _macro_f1(probs: np.ndarray, masks: np.ndarray) -> float | None:
    return label_metrics(probs, masks).get("macro_f1")


def _drop(original: float | None, perturbed: float | None) -> dict:
    drop = None if original is None or perturbed is None else original - perturbed
    return {"original": original, "perturbed": perturbed, "drop": drop}


def _block(sel, changed, orig, pert, masks, threshold: float, at_risk_only: bool) -> dict:
    """Figures for the rows in `sel`; `orig` / `pert` are (n, 5) probabilities, or (n,) at_risk scores."""
    n = int(sel.sum())
    o, p, m = orig[sel], pert[sel], masks[sel]
    o_risk, p_risk = (o, p) if at_risk_only else (signal_scores(o)["at_risk"], signal_scores(p)["at_risk"])
    risk_flips = (o_risk >= threshold) != (p_risk >= threshold)
    n_changed = int(changed[sel].sum())
    out = {
        "n": n,
        "changed": n_changed / n if n else 0.0,
        "at_risk_flip_rate": float(risk_flips.mean()) if n else 0.0,
        "at_risk_flip_rate_changed": float(risk_flips.sum() / n_changed) if n_changed else 0.0,
        "at_risk_f1": _drop(_at_risk_f1(o_risk, m, threshold), _at_risk_f1(p_risk, m, threshold)),
    }
    if not at_risk_only:
        top_flips = o.argmax(axis=1) != p.argmax(axis=1)
        out["top_label_flip_rate"] = float(top_flips.mean()) if n else 0.0
        out["top_label_flip_rate_changed"] = float(top_flips.sum() / n_changed) if n_changed else 0.0
        out["macro_f1"] = _drop(_macro_f1(o, m), _macro_f1(p, m))
    return out


def robustness_report(
    predict_proba: Predict,
    texts: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    langs: Sequence[str],
    thresholds: dict[str, float],
    seed: int = 0,
    perturbations: Sequence[str] | None = None,
    at_risk_only: bool = False,
) -> dict:
    """Flip rates and metric drops per perturbation, overall and per language.

    `predict_proba` returns (n, 5) probabilities in LABELS order, or with `at_risk_only` (n,) at_risk scores
    (then only the at_risk figures are reported). `thresholds["at_risk"]` is the decision threshold. Only the
    texts a perturbation changed are predicted again: an unchanged text keeps its prediction.
    """
    texts, langs = list(texts), np.asarray(langs)
    masks = label_masks(label_sets)
    threshold = thresholds["at_risk"]
    original = np.asarray(predict_proba(texts))
    report = {"seed": seed, "at_risk_only": at_risk_only, "threshold": threshold, "n": len(texts)}
    results = {}
    names = list(perturbations or PERTURBATIONS)
    if unknown := set(names) - set(PERTURBATIONS):
        raise ValueError(f"unknown perturbations {sorted(unknown)}; expected some of {', '.join(PERTURBATIONS)}")
    for name in names:
        perturbation = PERTURBATIONS[name]
        rows = [i for i, (t, lang) in enumerate(zip(texts, langs, strict=True)) if perturbation.applies(t, lang)]
        new = {i: perturbation(texts[i], _rng(seed, name, i)) for i in rows}
        changed_rows = [i for i in rows if new[i] != texts[i]]
        perturbed = original.copy()
        if changed_rows:
            perturbed[changed_rows] = np.asarray(predict_proba([new[i] for i in changed_rows]))
        applies = np.zeros(len(texts), dtype=bool)
        applies[rows] = True
        changed = np.zeros(len(texts), dtype=bool)
        changed[changed_rows] = True
        args = (changed, original, perturbed, masks, threshold, at_risk_only)
        entry = {"overall": _block(applies, *args)}
        for lang in sorted(set(langs[rows].tolist())):
            entry[lang] = _block(applies & (langs == lang), *args)
        results[name] = entry
    report["perturbations"] = results
    return report


def robustness_for_artifact(
    path: str | Path,
    data_dir: str | Path,
    split: str = "test",
    seed: int = 0,
    perturbations: Sequence[str] | None = None,
    operating_point: str = "at_risk.balanced",
) -> dict:
    """`robustness_report` of a saved RiskClassifier on a built data split, at one of its operating points."""
    from datasets import load_from_disk

    from model.classifier import RiskClassifier

    start = time.perf_counter()
    clf = RiskClassifier.load(path)
    data = load_from_disk(str(data_dir))[split]
    report = robustness_report(
        clf.predict_proba,
        data["text"],
        data["label_set"],
        data["lang"],
        {"at_risk": clf.threshold(operating_point)},
        seed=seed,
        perturbations=perturbations,
    )
    report.update(artifact=str(path), split=split, operating_point=operating_point)
    report["seconds"] = time.perf_counter() - start
    return report
