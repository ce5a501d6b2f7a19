"""In-process and external resources behind small interfaces.

Import the modules directly (``x0_rag.adapters.embedder``, ``x0_rag.adapters.hnsw``):
this package imports nothing itself, so that loading one adapter never pulls in
torch or hnswlib for another.
"""
