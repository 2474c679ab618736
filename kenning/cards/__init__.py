"""Flashcards from notes, each checked against its source span, exported and scheduled."""
