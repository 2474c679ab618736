"""Answers from the notes: LLM backends, prompts, checked citations, conversations."""
