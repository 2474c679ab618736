"""How the answer thresholds were chosen: support checks and refusals, measured on real data.

    python benchmarks/thresholds.py ../shared/data

Citation support (``Thresholds.similarity`` and ``.overlap``): PubMedQA's long answers are the
authors' own conclusions of their abstracts, written apart from the abstract text, so
"conclusion sentence cites its own abstract" is a real supported claim, and "the same sentence
cites the nearest *other* abstract" (found by kenning's own search) is a hard unsupported one.
The script scores both with the citation checker's signals and picks the thresholds that
separate them best (balanced accuracy).

Refusal (``Thresholds.refuse``): on the til notes, questions generated from the notes
(`kenning eval generate`) are answerable; SciFact's biomedical claims asked of the same notes
are not. The threshold on the best retrieved passage's cosine with the question that separates
them best is chosen the same way.
"""

from __future__ import annotations

import argparse
import random
import sys
import tarfile
from pathlib import Path

import numpy as np

from kenning import Index
from kenning.answer.sentences import SentenceVectors, content_words, split
from kenning.config import cache_dir
from kenning.eval.datasets import load_beir
from kenning.eval.evaluate import RunConfig, corpus_index
from kenning.eval.qa import load_qa
from kenning.eval.questions import generate


def best_split(pos: list[float], neg: list[float]) -> tuple[float, float]:
    """The threshold with the best balanced accuracy (values >= threshold count as positive)."""
    best = (0.0, 0.0)
    for t in sorted(set(pos) | set(neg)):
        acc = (np.mean([p >= t for p in pos]) + np.mean([n < t for n in neg])) / 2
        if acc > best[1]:
            best = (t, float(acc))
    return best


def signals(vectors: SentenceVectors, sentence: str, passage: str) -> tuple[float, float]:
    pieces = [s.text for s in split(passage, min_words=2)] or [passage]
    sim = float(np.max(vectors.vectors(pieces) @ vectors.vectors([sentence])[0]))
    words = content_words(sentence)
    overlap = len(words & content_words(passage)) / len(words) if words else 0.0
    return sim, overlap


def citations(data: Path, n: int) -> None:
    qa = load_qa(data / "pubmedqa-labeled")
    index, names = corpus_index(qa.as_corpus(), "pubmedqa-labeled", RunConfig("h"))
    doc_of = {v: k for k, v in names.items()}
    vectors = SentenceVectors(index.embedder)
    pos_sim, neg_sim, pos_ov, neg_ov = [], [], [], []
    for item in random.Random(0).sample(qa.items, n):
        gold = qa.passages[item.gold][1]
        hits = index.search(item.answers[0], k=5)
        other = next(h for h in hits if Path(h.path).stem != doc_of.get(item.gold))
        for sentence in split(item.answers[0]):
            s, o = signals(vectors, sentence.text, gold)
            pos_sim.append(s)
            pos_ov.append(o)
            s, o = signals(vectors, sentence.text, other.text)
            neg_sim.append(s)
            neg_ov.append(o)
    index.close()
    t_sim, acc_sim = best_split(pos_sim, neg_sim)
    t_ov, acc_ov = best_split(pos_ov, neg_ov)
    either = (
        np.mean([s >= t_sim or o >= t_ov for s, o in zip(pos_sim, pos_ov, strict=True)])
        + np.mean([s < t_sim and o < t_ov for s, o in zip(neg_sim, neg_ov, strict=True)])
    ) / 2
    print(f"## citation support: {len(pos_sim)} supported and {len(neg_sim)} unsupported pairs")
    print(
        f"similarity: supported median {np.median(pos_sim):.3f}, unsupported "
        f"{np.median(neg_sim):.3f}; best threshold {t_sim:.3f} (balanced accuracy {acc_sim:.3f})"
    )
    print(
        f"overlap:    supported median {np.median(pos_ov):.3f}, unsupported "
        f"{np.median(neg_ov):.3f}; best threshold {t_ov:.3f} (balanced accuracy {acc_ov:.3f})"
    )
    print(f"either signal at those thresholds: balanced accuracy {either:.3f}")


def til_index(data: Path) -> Path:
    """The til notes indexed with the default embedder, built once under the cache folder."""
    work = cache_dir() / "bench" / "til-notes"
    if not (work / "til").exists():
        with tarfile.open(data / "notes-jbranchaud-til" / "jbranchaud-til-md.tar.gz") as tar:
            tar.extractall(work, filter="data")
    db = cache_dir() / "bench" / "til-minilm.db"
    with Index.open(db) as index:
        index.add([work / "til"])
    return db


def refusals(data: Path, n: int) -> None:
    with Index.open(til_index(data)) as index:
        answerable = [q["question"] for q in generate(index, n, seed=1)]
        claims = list(load_beir(data / "scifact", "test").queries.values())
        unanswerable = random.Random(0).sample(claims, n)
        vectors = SentenceVectors(index.embedder)

        def support(question: str) -> float:
            hits = index.search(question, k=5)
            ids = np.asarray([h.chunk_id for h in hits])
            ranked = index.searcher.vectors().search(vectors.query(question), len(ids), ids)
            return max((s for _, s in ranked), default=0.0)

        pos = [support(q) for q in answerable]
        neg = [support(q) for q in unanswerable]
    t, acc = best_split(pos, neg)
    print(
        f"\n## refusal: {len(pos)} answerable (generated from the til notes) and {len(neg)} "
        "unanswerable (SciFact claims) questions"
    )
    print(
        f"best passage cosine: answerable median {np.median(pos):.3f}, unanswerable "
        f"{np.median(neg):.3f}; best threshold {t:.3f} (balanced accuracy {acc:.3f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder")
    ap.add_argument("-n", type=int, default=150, help="questions per side")
    args = ap.parse_args()
    citations(args.data, args.n)
    refusals(args.data, args.n)


if __name__ == "__main__":
    sys.exit(main())
