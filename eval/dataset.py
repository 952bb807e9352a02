"""The labelled rows one evaluation runs on: a built split or a platform export file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.labels import label_masks


class EvalInputError(ValueError):
    """Data or a model that cannot be evaluated; the message says which and why."""


@dataclass
class EvalData:
    """The labelled rows of one evaluation set (texts stay here; metrics.json never holds them)."""

    ids: list[str]
    texts: list[str]
    label_sets: list[list[str]]
    langs: list[str]
    surfaces: list[str]
    sources: list[str]
    tags: list[list[str]]
    description: str = ""
    masks: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if not self.texts:
            raise EvalInputError(f"{self.description or 'the evaluation set'} holds no rows")
        self.masks = label_masks(self.label_sets)

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_rows(cls, rows: Iterable[dict], description: str = "") -> EvalData:
        """Rows with the built dataset's columns (id, text, label_set, lang, surface, source, tags)."""
        rows = list(rows)
        return cls(
            ids=[str(r["id"]) for r in rows],
            texts=[r["text"] for r in rows],
            label_sets=[list(r["label_set"]) or [r["label"]] for r in rows],
            langs=[r.get("lang") or "other" for r in rows],
            surfaces=[r.get("surface") or "post" for r in rows],
            sources=[r.get("source") or "" for r in rows],
            tags=[list(r.get("tags") or []) for r in rows],
            description=description,
        )

    @classmethod
    def from_split(cls, data_dir: Path, split: str = "test") -> EvalData:
        """A split of the built data (`sahay data build`)."""
        from datasets import load_from_disk

        if not (Path(data_dir) / "dataset_dict.json").is_file():
            raise EvalInputError(f"no built data in {data_dir}: run `sahay data build` or pass --input FILE")
        splits = load_from_disk(str(data_dir))
        if split not in splits:
            raise EvalInputError(f"{data_dir} has no split {split!r}; it has {', '.join(splits)}")
        return cls.from_rows(splits[split], description=f"{data_dir} [{split}]")

    @classmethod
    def from_export(cls, path: Path) -> EvalData:
        """A platform export (CSV / JSONL / Parquet); any unusable row is an error naming its file:line."""
        from data.loaders.common import DataFileError
        from data.loaders.export import load_export

        try:
            loaded = load_export(Path(path))
        except DataFileError as exc:
            raise EvalInputError(str(exc)) from None
        bad = loaded.report.bad_rows
        if bad:
            listed = "\n  ".join(str(b) for b in bad[:5])
            more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise EvalInputError(f"{len(bad)} unusable row(s) in {path}:\n  {listed}{more}")
        return cls.from_rows((r.model_dump() for r in loaded.records), description=str(path))
