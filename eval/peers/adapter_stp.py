"""Adapter for suicide-text-predictor 0.2.4, run by `worker.py` inside the peer's environment.

The package is a 2-layer bidirectional LSTM (embedding 256, hidden 128, 2 classes) with its torchtext
vocabulary, trained on English posts. Its only API, `predict_tweet(text)`, builds the model and
`torch.load`s the 77 MB weights on every call and returns a sentence ("Prediction: SUICIDE with confidence
rate: ..."). This adapter instead uses the package's own `TextClassificationModel` and vocabulary, loads the
weights once, and repeats `predict_tweet`'s preprocessing exactly: lower-case, drop URLs, "@name" -> "@user",
drop every character that is not a word character or whitespace, torchtext's "basic_english" tokenizer,
unknown words -> `<unk>`, pad with `<pad>` or cut to 512 tokens. Because every text is padded to the same
512 tokens, scoring a batch gives the same numbers as one text at a time.

Environment (set by the spec): torch 2.13 next to the package installed with --no-deps (it pins torch 2.0.1
and torchtext 0.15.2); `eval/peers/shims/torchtext` stands in for torchtext; TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
lets current torch unpickle the vocabulary object (`weights_only` loading refuses it).

at_risk = softmax probability of class 1 ("SUICIDE").
"""

from __future__ import annotations

import os
import re

MAX_LENGTH = 512
BATCH = 32

_URL = re.compile(r"http\S+|www.\S+")
_MENTION = re.compile(r"@\w+")
_PUNCT = re.compile(r"[^\w\s]")


class STPAdapter:
    def __init__(self, threads: int | None = None) -> None:
        os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.loads = {"model": 0, "vocab": 0, "other": 0}
        real_load = torch.load

        def counting_load(f, *args, **kwargs):
            name = os.path.basename(str(f))
            key = "model" if name == "text_prediction.pt" else "vocab" if name == "vocab.pth" else "other"
            self.loads[key] += 1
            return real_load(f, *args, **kwargs)

        torch.load = counting_load  # so a second load anywhere (e.g. predict_tweet) would show in stats
        import suicide_text_predictor as stp  # unpickles vocab.pth at import
        from torchtext.data.utils import get_tokenizer

        self.vocab = stp.__VOCAB__
        self.tokenizer = get_tokenizer("basic_english")
        self.pad = self.vocab["<pad>"]
        model = stp.TextClassificationModel(vocab_size=len(self.vocab), embed_dim=256, hidden_dim=128, num_classes=2)
        model.load_state_dict(torch.load(stp.__MODEL_PATH__, map_location=torch.device("cpu")))
        model.eval()
        self.model = model

    def indices(self, text: str) -> list[int]:
        text = _URL.sub("", text.lower())
        text = _MENTION.sub("@user", text)
        text = _PUNCT.sub("", text)
        ids = [self.vocab[token] for token in self.tokenizer(text)][:MAX_LENGTH]
        return ids + [self.pad] * (MAX_LENGTH - len(ids))

    def score(self, texts: list[str]) -> list[float]:
        torch = self.torch
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                batch = torch.tensor([self.indices(t) for t in texts[start : start + BATCH]], dtype=torch.long)
                probs = torch.softmax(self.model(batch), dim=1)[:, 1]
                scores.extend(float(p) for p in probs)
        return scores

    def info(self) -> dict:
        from importlib.metadata import version

        return {
            "package": "suicide-text-predictor",
            "version": version("suicide-text-predictor"),
            "torch": self.torch.__version__,
            "vocab_size": len(self.vocab),
            "threads": self.torch.get_num_threads(),
        }

    def stats(self) -> dict:
        return {"model_loads": self.loads["model"], "vocab_loads": self.loads["vocab"]}


def load(options: dict) -> STPAdapter:
    return STPAdapter(threads=options.get("threads"))
