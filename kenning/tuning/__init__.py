"""Tuning retrieval to the user's own notes: a query-side adapter, a fitted fusion weight
and a trained reranker, learnt from pairs generated from the index itself.

``adapter`` holds the query adapter, ``record`` what an index keeps of a tuning (read by
``kenning.search``), and ``tune`` the training and measuring behind ``kenning tune``.
"""
