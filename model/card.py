"""MODEL_CARD.md for an artifact: intended use, what it must not be used for, data, figures, failure modes.

Written from the artifact's own metrics and provenance, so the card never disagrees with the model.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from data.taxonomy import LABELS

SOURCES_FILE = Path(__file__).resolve().parents[1] / "data" / "sources.yaml"
LANGS = ("en", "hi", "hi-Latn")

INTENDED_USE = """\
## Intended use

Scoring a platform's own text content (posts, comments, searches, chats, bios, captions) in English, Hindi and
Hinglish to (1) show in-app support resources to people who may be at risk and (2) order a human moderation
queue so that trained reviewers see the most urgent items first. Every decision beyond showing resources is
made by a person under the platform's policy and the law.

## Out of scope

- **Diagnosis** or any clinical judgement about a person; a score describes a text, not a person.
- **Surveillance, tracing or profiling**: no network, device or location identifiers are used or inferred;
  do not join scores with such identifiers to find people.
- **Decisions without a human**: no automatic reports to police, employers, schools, insurers or family;
  no automatic account action beyond showing support resources.
- Languages and scripts other than en, hi (Devanagari) and hi-Latn; images, audio (other than transcripts).
"""

FAILURE_MODES = """\
## Known failure modes

- Figurative and idiomatic death talk ("this exam is killing me", "mar gaye hass ke") can raise `at_risk`,
  especially in Hinglish; negations ("I'm not suicidal") and past recovery can be read as current risk.
- Goodbye messages with no keyword and vague plans are the hardest `intent` cases; `urgent` recall is lower
  than `at_risk` recall.
- Sarcasm, song lyrics and quotes, and jokes between friends ("kys lol") are often misread.
- Everyday texts that share words with risk texts can still be flagged: about 8% of the hand-written everyday
  test texts (ordinary posts, low mood without risk, look-alike words) pass `at_risk.balanced`; precision on
  real posts is far lower than on the test split (see the public hold-out in metrics.json).
- The evaluation data is hand-written (see data/DATASHEET.md): figures on real platform traffic will be
  lower; re-measure on the platform's own moderator-labelled data before choosing thresholds.
- Dialect-heavy Hindi (Rajasthani, Bhojpuri, Haryanvi), other Indian languages and Urdu script are weakly
  covered or not at all.
- A text longer than the model's window (`max_length` tokens) is read as overlapping windows and scored by its
  riskiest; past `max_windows` windows the middle of the text is skipped (the first windows and the last are
  read). The n-gram member reads every text whole. Explanations of texts over 96 words remove runs of words
  first, then the words of the runs that mattered most, so they can miss a word that counts only together with
  words of other runs.
"""


def _romanised_line(metrics: dict) -> str:
    w = metrics.get("romanised_weight", 0.0)
    if not w:
        return "Devanagari texts are read as written only. "
    return (
        f"Devanagari texts whose first reading is unsure are also read romanised, that reading weighted {w:g} "
        "(chosen on validation macro-F1; model/script_views.py). "
    )


def _metrics_table(block: dict) -> list[str]:
    lines = ["| | " + " | ".join(LANGS) + " |", "|---|" + "---|" * len(LANGS)]

    def cell(lang, get):
        try:
            return f"{get(block[lang]):.3f}"
        except (KeyError, TypeError):
            return "–"

    lines.append("| n | " + " | ".join(str(block.get(lang, {}).get("n", "–")) for lang in LANGS) + " |")
    lines.append(
        "| macro-F1 (5 labels) | " + " | ".join(cell(lg, lambda b: b["labels"]["macro_f1"]) for lg in LANGS) + " |"
    )
    for label in LABELS:
        lines.append(
            f"| F1 {label} | "
            + " | ".join(cell(lg, lambda b, label=label: b["labels"]["per_label"][label]["f1"]) for lg in LANGS)
            + " |"
        )
    for signal in ("at_risk", "urgent", "violating"):
        for what in ("precision", "recall", "f1"):
            lines.append(
                f"| {signal} {what} | "
                + " | ".join(cell(lg, lambda b, s=signal, w=what: b["signals"][s][w]) for lg in LANGS)
                + " |"
            )
    lines.append(
        "| false at_risk on figurative/news/grief/recovery/negation | "
        + " | ".join(cell(lg, lambda b: b["hard_negative_false_at_risk"]["rate"]) for lg in LANGS)
        + " |"
    )
    return lines


def _size_section(metrics: dict, clf) -> list[str]:
    """Teacher vs student and the int8 decision, when training made them."""
    lines = ["## Size and speed choices", ""]
    report = metrics.get("distillation")
    if report:
        default = "student" if report["student_is_default"] else "teacher"
        lines += [
            f"Distilled: a {report['teacher_layers']}-layer teacher taught a {report['student_layers']}-layer student "
            f"(alpha {report['alpha']}, temperature {report['temperature']}). The default is the **{default}** "
            f"(largest validation gap {report['largest_validation_gap']:.3f}; allowed {report['max_gap']}).",
            "",
            "| figure | teacher validation | teacher test | student validation | student test |",
            "|---|---|---|---|---|",
        ]
        figures = report["figures"]
        for key in figures["teacher"]["validation"]:
            cells = [f"{figures[m][s][key]:.3f}" for m in ("teacher", "student") for s in ("validation", "test")]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    q = metrics.get("int8")
    if q:
        lines.append(
            f"int8 dynamic quantisation of the encoder: {'adopted' if q['adopted'] else 'not adopted'} "
            f"(validation drop {q['pooled_validation_drop']:.3f} over all languages, allowed {q['max_drop']}; "
            f"{q['largest_language_drop']:.3f} in one language, allowed {q['max_language_drop']:.2f}; "
            f"feed-forward outputs kept fp32: {len(q.get('fp32_nodes', []))})."
        )
    if len(lines) == 2:
        lines.append("Full-size fp32 model; no distillation or quantisation.")
    return lines


def write_model_card(path: Path, clf, metrics: dict, provenance: dict) -> Path:
    sources = yaml.safe_load(SOURCES_FILE.read_text())
    used = provenance.get("training_rows_per_source", {})
    lines = [
        f"# Sahay model card — `{clf.version}`",
        "",
        f"Kind: `{clf.backend.kind}`; created {provenance.get('created')}; trained in "
        f"{provenance.get('trained_seconds')} s; data fingerprint `{provenance.get('data_fingerprint')}`.",
        "",
        INTENDED_USE,
        "## Data",
        "",
        "| source | training rows | origin | licence |",
        "|---|---|---|---|",
    ]
    for name, n in used.items():
        base, _, derived = name.partition("+")
        info = sources.get(base, {"origin": "platform export", "licence": "the platform's own"})
        origin = f"romanised copies of `{base}` (data/transliterate.py)" if derived == "translit" else info["origin"]
        lines.append(f"| {name} | {n} | {origin} | {info['licence']} |")
    share = provenance.get("config", {}).get("augment", {}).get("obfuscate", 0.0)
    if share:
        lines += [
            "",
            f"{share:.0%} of the Latin-script training texts were respelt in leetspeak or with typos "
            "(eval/perturb.py) so the model reads the spellings people use to slip past filters.",
        ]
    lines += [
        "",
        f"Validation ({provenance.get('validation_rows')} rows) and test ({provenance.get('test_rows')} rows) are "
        "hand-labelled seed-corpus texts, split group-aware so no near-duplicate crosses splits.",
        "",
        "## Quality on the held-out test split",
        "",
        "Signals at their `balanced` operating points; rows whose label set does not decide a figure are left out.",
        "",
        *_metrics_table(metrics["test"]),
        "",
        "## Validation",
        "",
        *_metrics_table(metrics["validation"]),
        "",
        "## Calibration and operating points",
        "",
        f"Temperature {metrics['temperature']:.3f}, fitted on validation. {_romanised_line(metrics)}"
        "Operating points (chosen on validation):",
        "",
        "| name | threshold | precision | recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for name, p in metrics["operating_points"].items():
        lines.append(f"| {name} | {p['threshold']:.3f} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} |")
    lines += ["", *_size_section(metrics, clf), "", FAILURE_MODES]
    out = path / "MODEL_CARD.md"
    out.write_text("\n".join(lines))
    return out
