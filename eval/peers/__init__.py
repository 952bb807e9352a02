"""Peer classifiers scored side by side with Sahay's own models (`sahay eval peers ...`).

Each peer lives in its own virtual environment under `$SAHAY_CACHE_DIR/peers` (default
`~/.cache/sahay/peers`), made by `sahay eval peers setup`, so its pins never touch ours; it is scored through a
worker process in that environment (`worker.py`). Our models are scored in-process. Every scorer has
`at_risk(texts) -> np.ndarray` (floats in [0, 1]) and `close()`:

    from eval.peers import SCORERS, open_scorer
    for name in SCORERS:
        with open_scorer(name) as scorer:
            scores = scorer.at_risk(texts)
"""

from eval.peers.envs import PeerNotInstalled, PeerSetupError, peer_status, peers_dir, setup_peer
from eval.peers.registry import OURS, PEERS, SCORERS, ModelSpec, PeerSpec, UnknownScorer, open_scorer
from eval.peers.scorer import PeerError, PeerScorer
from eval.scorers import ModelScorer

__all__ = [
    "OURS",
    "PEERS",
    "SCORERS",
    "ModelScorer",
    "ModelSpec",
    "PeerError",
    "PeerNotInstalled",
    "PeerScorer",
    "PeerSetupError",
    "PeerSpec",
    "UnknownScorer",
    "open_scorer",
    "peer_status",
    "peers_dir",
    "setup_peer",
]
