"""Stand-ins for the small parts of old libraries that a peer needs, put on its worker's `sys.path` only.

Nothing in Sahay imports these: `eval/peers/worker.py` prepends this folder to the path of a peer's own
interpreter when the peer's spec names a shim (see `eval.peers.registry.PeerSpec.shims`).
"""
