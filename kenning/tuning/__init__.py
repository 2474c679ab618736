"""Tuning retrieval to the user's own notes: a query-side adapter, a fitted fusion weight
and a trained reranker, learnt from pairs generated from the index itself.

This package only trains and writes: ``adapter`` fits the query adapter, ``finetune`` and
``crossencoder`` train MiniLM and a cross-encoder, ``reranker_training`` the rerankers, and
``tune`` measures them behind ``kenning tune`` and writes the record that search reads
(``kenning.search.tuned``, ``kenning.search.adapter``, ``kenning.search.crossencoder``).
"""
