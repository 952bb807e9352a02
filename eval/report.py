"""The evaluation as one self-contained HTML file: inline CSS, JS and SVG plots, so it opens offline and can be
mailed or attached to a review as it is. Error texts are blurred until clicked: they describe self-harm.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from data.taxonomy import LABELS
from eval.dataset import EvalData

COLORS = ("#1f6fb4", "#d0452f", "#2a9d46", "#8a5cc2", "#e08a12", "#7a5230", "#d45fae", "#159aa8")
"""One colour per model, in the order given on the command line."""

WIDTH, HEIGHT = 400, 320
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 44


# -- plots -------------------------------------------------------------------------------------------------------
def _x(v: float) -> float:
    return round(LEFT + v * (WIDTH - LEFT - RIGHT), 2)


def _y(v: float) -> float:
    return round(HEIGHT - BOTTOM - v * (HEIGHT - TOP - BOTTOM), 2)


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    """Axes on [0, 1] x [0, 1] with a grid every 0.2."""
    parts = [
        f'<svg class="plot" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}"><title>{escape(title)}</title>',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" class="ptitle">{escape(title)}</text>',
    ]
    for i in range(6):
        v = i / 5
        parts.append(f'<line x1="{_x(0)}" y1="{_y(v)}" x2="{_x(1)}" y2="{_y(v)}" class="grid"/>')
        parts.append(f'<line x1="{_x(v)}" y1="{_y(0)}" x2="{_x(v)}" y2="{_y(1)}" class="grid"/>')
        parts.append(f'<text x="{_x(v)}" y="{_y(0) + 14}" text-anchor="middle" class="tick">{v:.1f}</text>')
        parts.append(f'<text x="{_x(0) - 6}" y="{_y(v) + 4}" text-anchor="end" class="tick">{v:.1f}</text>')
    parts.append(f'<rect x="{_x(0)}" y="{_y(1)}" width="{_x(1) - _x(0)}" height="{_y(0) - _y(1)}" class="axes"/>')
    parts.append(f'<text x="{(_x(0) + _x(1)) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(
        f'<text x="12" y="{(_y(0) + _y(1)) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(_y(0) + _y(1)) / 2})">{escape(ylabel)}</text>'
    )
    return parts


def _legend(entries: list[tuple[str, str]], top: bool) -> list[str]:
    y0 = _y(1) + 14 if top else _y(0) - 10 - 16 * (len(entries) - 1)
    parts = []
    for i, (label, color) in enumerate(entries):
        y = y0 + 16 * i
        parts.append(
            f'<line x1="{_x(0.04)}" y1="{y - 4}" x2="{_x(0.1)}" y2="{y - 4}" stroke="{color}" class="series"/>'
        )
        parts.append(f'<text x="{_x(0.12)}" y="{y}" class="legend">{escape(label)}</text>')
    return parts


def _polyline(xs: list[float], ys: list[float], color: str) -> str:
    coords = " ".join(f"{_x(x)},{_y(y)}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline points="{coords}" fill="none" stroke="{color}" class="series"/>'


def pr_plot(signal: str, curves: dict, marks: dict[str, tuple[float, float]], colors: dict[str, str]) -> str:
    """Precision against recall per model; the dot is the model's balanced operating point on this set."""
    parts = _frame(f"Precision-recall: {signal}", "recall", "precision")
    legend = []
    for name, curve in curves.items():
        if not curve["recall"]:
            continue
        parts.append(_polyline(curve["recall"], curve["precision"], colors[name]))
        if name in marks:
            r, p = marks[name]
            parts.append(f'<circle cx="{_x(r)}" cy="{_y(p)}" r="4" fill="{colors[name]}"/>')
        legend.append((name, colors[name]))
    if not legend:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no positives or negatives</text>')
    return Markup("".join([*parts, *_legend(legend, top=False), "</svg>"]))


def reliability_plot(signal: str, calibration: dict, colors: dict[str, str]) -> str:
    """Observed rate against mean predicted probability per bin; the diagonal is perfect calibration."""
    parts = _frame(f"Reliability: {signal}", "predicted probability", "observed rate")
    parts.append(f'<line x1="{_x(0)}" y1="{_y(0)}" x2="{_x(1)}" y2="{_y(1)}" class="diagonal"/>')
    legend = []
    for name, cal in calibration.items():
        bins = cal["bins"]
        if not bins:
            continue
        xs, ys = [b["mean_score"] for b in bins], [b["observed"] for b in bins]
        parts.append(_polyline(xs, ys, colors[name]))
        parts.extend(
            f'<circle cx="{_x(b["mean_score"])}" cy="{_y(b["observed"])}" r="3" fill="{colors[name]}">'
            f"<title>{b['n']} items</title></circle>"
            for b in bins
        )
        legend.append((f"{name} (ECE {cal['ece']:.3f})", colors[name]))
    return Markup("".join([*parts, *_legend(legend, top=True), "</svg>"]))


# -- formatting --------------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def with_interval(figure: dict | None) -> Markup:
    """'0.912 [0.880, 0.940]' with the interval in a smaller, muted font."""
    if not figure:
        return Markup("–")
    text = escape(fmt(figure["value"]))
    if figure.get("low") is not None:
        text += Markup(' <span class="ci">[{}, {}]</span>').format(fmt(figure["low"]), fmt(figure["high"]))
    return Markup(text)


def highlighted(text: str, spans: list[dict]) -> Markup:
    """The text with explanation spans in <mark>, escaped; overlapping or out-of-range spans are skipped."""
    out, cursor = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        start, end = span["start"], span["end"]
        if start < cursor or end > len(text) or start >= end:
            continue
        out.append(escape(text[cursor:start]))
        out.append(Markup('<mark title="weight {}">{}</mark>').format(fmt(span.get("weight")), text[start:end]))
        cursor = end
    out.append(escape(text[cursor:]))
    return Markup("").join(out)


def heat(count: int, total: int) -> str:
    """A background for a confusion-matrix cell: darker for a larger share of its true label's row."""
    share = count / total if total else 0.0
    return f"background: rgba(31, 111, 180, {0.08 + 0.8 * share:.2f}); color: {'#fff' if share > 0.55 else '#111'}"


# -- page --------------------------------------------------------------------------------------------------------
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, ci=with_interval)
    env.globals.update(heat=heat)
    return env


def plots(result: dict) -> dict[str, list[Markup]]:
    """Every plot of the report, by section."""
    colors = {m["name"]: COLORS[i % len(COLORS)] for i, m in enumerate(result["models"])}
    pr, rel = [], []
    for signal, curves in result["curves"].items():
        marks = {}
        for name in curves:
            figures = result["signals"][signal]["models"].get(name)
            if figures and figures["recall"]["value"] is not None:
                marks[name] = (figures["recall"]["value"], figures["precision"]["value"])
        pr.append(pr_plot(signal, curves, marks, colors))
        rel.append(reliability_plot(signal, result["calibration"][signal], colors))
    return {"pr": pr, "reliability": rel}


def render_report(result: dict, data: EvalData) -> str:
    """The HTML page; `data` supplies the error texts, which metrics.json leaves out."""
    colors = {m["name"]: COLORS[i % len(COLORS)] for i, m in enumerate(result["models"])}
    errors = {
        name: {
            kind: [{**row, "html": highlighted(data.texts[row["index"]], row["spans"])} for row in rows]
            for kind, rows in by_kind.items()
        }
        for name, by_kind in result["errors"].items()
    }
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=result,
        names=[m["name"] for m in result["models"]],
        point_names=list(dict.fromkeys(row["point"] for rows in result["operating_points"].values() for row in rows)),
        colors=colors,
        plots=plots(result),
        errors=errors,
        labels=LABELS,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(result: dict, data: EvalData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result, data), encoding="utf-8")
    return path
