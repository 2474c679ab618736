"""The agent: several steps through the notes with read-only tools, traces and memory."""
