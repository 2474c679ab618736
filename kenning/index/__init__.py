"""The library's front object: ``Index`` (``index``), which every edge drives; ``watch``, which
syncs it as files change; and ``copying``, which copies an index between stores."""

from .index import Index, check_location, check_paths, check_query

__all__ = ["Index", "check_location", "check_paths", "check_query"]
