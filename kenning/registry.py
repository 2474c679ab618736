"""One registry per backend role, the same for built-ins and plugins.

Built-in backends register with the ``@registry.register("id")`` decorator; third-party
packages expose classes under the registry's entry-point group (``kenning.embedders``,
``kenning.vector_indexes``, ``kenning.keyword_indexes``, ``kenning.stores``), spelled out
where each registry is made, and are found the first time an unknown id is looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import UnknownBackend

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps explicit ids to backend classes; an unknown id lists the valid ones."""

    def __init__(self, role: str, group: str) -> None:
        """``role`` names the backend kind in messages; ``group`` is the entry-point group."""
        self.role, self.group = role, group
        self._classes: dict[str, type[T]] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            return cls

        return decorate

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            self._classes.setdefault(ep.name, ep.load())

    def get(self, name: str) -> type[T]:
        if name not in self._classes:
            self._load_plugins()
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownBackend(self.role, name, self.names()) from None

    def name_of(self, cls: type) -> str | None:
        """The id a class is registered under (None for an unregistered class)."""
        self._load_plugins()
        return next((n for n, c in self._classes.items() if c is cls), None)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._classes)
