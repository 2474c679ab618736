"""Readers for evaluation data in the BEIR layout.

A BEIR folder holds ``corpus.jsonl[.gz]`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (query-id, corpus-id, score, with a header).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kenning.errors import ConfigError


@dataclass
class BeirDataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _open(path: Path) -> IO[str]:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open()


def _jsonl(path: Path) -> Iterator[dict[str, str]]:
    with _open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{path}:{n}: not valid JSON ({e.msg})") from None


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).exists():
            return folder / name
    raise ConfigError(f"{folder}: no {stem}.jsonl or {stem}.jsonl.gz (is this a BEIR folder?)")


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; only queries judged in ``split`` are kept."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise ConfigError(f"{qrels_path}: no such qrels file (try another --split)")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open() as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and not parts[-1].lstrip("-").isdigit():
                continue  # header
            if len(parts) != 3:
                raise ConfigError(f"{qrels_path}:{n}: expected 3 tab-separated columns")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    corpus = {
        d["_id"]: (d.get("title", ""), d.get("text", "")) for d in _jsonl(_find(folder, "corpus"))
    }
    queries = {q["_id"]: q["text"] for q in _jsonl(_find(folder, "queries")) if q["_id"] in qrels}
    return BeirDataset(corpus, queries, qrels)


def safe_name(doc_id: str) -> str:
    """A file name for a document id (ids may hold slashes or other odd characters)."""
    return re.sub(r"[^\w.-]", "_", doc_id)


def write_corpus(data: BeirDataset, folder: Path) -> dict[str, str]:
    """Write each document as ``<id>.md`` ("# title" + text); returns file stem -> doc id."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for doc_id, (title, text) in data.corpus.items():
        name = safe_name(doc_id)
        names[name] = doc_id
        body = f"# {title}\n\n{text}\n" if title else f"{text}\n"
        path = folder / f"{name}.md"
        if not path.exists() or path.read_text() != body:
            path.write_text(body)
    return names
