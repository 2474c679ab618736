"""Evaluation: retrieval metrics on BEIR data and on questions generated from the user's
notes, answer metrics on QA sets, reports, and the history of past runs."""
