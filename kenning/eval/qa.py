"""Question-answering sets: readers, answer metrics, and gold-passage retrieval scores.

Readers: SQuAD-style JSON, JSONL (``{"question", "answers": [...], "context"?, "id"?}``) and
PubMedQA's ``ori_pqal.json`` + ``test_ground_truth.json``. Answer metrics follow the official
SQuAD v1.1 evaluation (normalise: lower case, drop punctuation and articles, squash spaces);
ROUGE-L comes from ``rouge-score`` and BLEU from ``sacrebleu`` (the ``eval`` extra).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kenning.errors import ConfigError, MissingExtra

from .datasets import BeirDataset
from .evaluate import RunConfig, corpus_index


@dataclass
class QAItem:
    qid: str
    question: str
    answers: list[str]
    gold: str | None = None  # id of the passage the answer comes from
    decision: str | None = None  # PubMedQA's yes / no / maybe


@dataclass
class QASet:
    items: list[QAItem]
    passages: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (title, text)

    def as_corpus(self) -> BeirDataset:
        return BeirDataset(self.passages, {i.qid: i.question for i in self.items}, {})


def _pid(text: str) -> str:
    return "p" + hashlib.sha256(text.encode()).hexdigest()[:12]


def load_qa(path: str | Path, split: str = "test") -> QASet:
    """Read a QA set; the format is told from the path (folder, .json or .jsonl)."""
    path = Path(path)
    if path.is_dir():
        if (path / "ori_pqal.json").exists():
            return _pubmedqa(path, split)
        raise ConfigError(f"{path}: a folder must hold PubMedQA's ori_pqal.json")
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        return _jsonl(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and "data" in data:
        return _squad(data)
    raise ConfigError(f"{path}: expected SQuAD JSON (a 'data' list), JSONL or a PubMedQA folder")


def _pubmedqa(folder: Path, split: str) -> QASet:
    data = json.loads((folder / "ori_pqal.json").read_text())
    passages = {pmid: ("", " ".join(d["CONTEXTS"])) for pmid, d in data.items()}
    wanted = list(data)
    if split == "test":
        wanted = list(json.loads((folder / "test_ground_truth.json").read_text()))
    items = [
        QAItem(p, data[p]["QUESTION"], [data[p]["LONG_ANSWER"]], p, data[p].get("final_decision"))
        for p in wanted
    ]
    return QASet(items, passages)


def _squad(data: dict[str, Any]) -> QASet:
    items, passages = [], {}
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            pid = _pid(para["context"])
            passages[pid] = (article.get("title", ""), para["context"])
            for qa in para.get("qas", []):
                answers = [a["text"] for a in qa.get("answers", [])]
                items.append(QAItem(str(qa["id"]), qa["question"], answers, pid))
    return QASet(items, passages)


def _jsonl(path: Path) -> QASet:
    items, passages = [], {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, answers = row["question"], row.get("answers") or []
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{n}: need a JSON object with 'question' ({e})") from None
        gold = None
        if row.get("context"):
            gold = _pid(row["context"])
            passages[gold] = ("", row["context"])
        answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
        items.append(QAItem(str(row.get("id", f"q{n}")), question, answers, gold))
    return QASet(items, passages)


# -- answer metrics (SQuAD v1.1 official logic) -------------------------------------------


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truths: list[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(t) for t in truths))


def _f1(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, truths: list[str]) -> float:
    return max((_f1(prediction, t) for t in truths), default=0.0)


def rouge_l(prediction: str, truths: list[str]) -> float:
    try:
        from rouge_score import rouge_scorer
    except ImportError as e:
        raise MissingExtra("rouge-score", "eval") from e
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max((scorer.score(t, prediction)["rougeL"].fmeasure for t in truths), default=0.0)


def corpus_bleu(predictions: list[str], truths: list[list[str]]) -> float:
    """Corpus BLEU (0-100) with a variable number of references per prediction."""
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as e:
        raise MissingExtra("sacrebleu", "eval") from e
    width = max((len(t) for t in truths), default=1)
    streams = [[t[i] if i < len(t) else "" for t in truths] for i in range(width)]
    return float(BLEU().corpus_score(predictions, streams).score)


def citation_scores(cited: list[str], gold: set[str]) -> tuple[float, float]:
    """(precision, recall) of cited passage ids against the gold ones."""
    cited_set = set(cited)
    right = len(cited_set & gold)
    precision = right / len(cited_set) if cited_set else 0.0
    recall = right / len(gold) if gold else 0.0
    return precision, recall


def score_predictions(qa: QASet, predictions: list[dict[str, Any]]) -> tuple[dict, list[dict]]:
    """Mean EM, F1, ROUGE-L, BLEU (and citation precision/recall) plus per-question rows."""
    MissingExtra.require("rouge_score", "rouge-score", "eval")
    MissingExtra.require("sacrebleu", "sacrebleu", "eval")
    by_id = {i.qid: i for i in qa.items}
    by_q = {i.question: i for i in qa.items}
    rows: list[dict[str, Any]] = []
    preds: list[str] = []
    refs: list[list[str]] = []
    for n, p in enumerate(predictions, 1):
        item = by_id.get(str(p.get("id", ""))) or by_q.get(p.get("question", ""))
        if item is None:
            raise ConfigError(f"prediction {n}: no question with id {p.get('id')!r} in the set")
        answer = str(p.get("answer", ""))
        row = {
            "id": item.qid,
            "question": item.question,
            "answer": answer,
            "answers": item.answers,
            "em": exact_match(answer, item.answers),
            "f1": f1_score(answer, item.answers),
            "rouge_l": rouge_l(answer, item.answers),
        }
        if "citations" in p and item.gold:
            row["citation_precision"], row["citation_recall"] = citation_scores(
                [str(c) for c in p["citations"]], {item.gold}
            )
        rows.append(row)
        preds.append(answer)
        refs.append(item.answers or [""])
    if not rows:
        raise ConfigError("the predictions file holds no predictions")
    keys = ["em", "f1", "rouge_l", "citation_precision", "citation_recall"]
    mean = {
        k: sum(r[k] for r in rows if k in r) / sum(1 for r in rows if k in r)
        for k in keys
        if any(k in r for r in rows)
    }
    mean["bleu"] = corpus_bleu(preds, refs)
    return mean, rows


def read_predictions(path: Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return out


def retrieval_eval(
    qa: QASet,
    name: str,
    config: RunConfig,
    ks: tuple[int, ...] = (1, 5, 10),
    tick: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Gold-passage hit rate @k and 'contains' accuracy @k over an index of the passages."""
    if not qa.passages:
        raise ConfigError("this QA set has no passages (contexts) to build an index from")
    index, names = corpus_index(qa.as_corpus(), name, config)
    rows = []
    with index:
        for item in qa.items:
            hits = index.search(item.question, k=max(ks) * 3, **config.search_args())
            docs: list[str] = []
            for h in hits:
                doc = names.get(Path(h.path).stem)
                if doc is not None and doc not in docs:
                    docs.append(doc)
            answers = [normalize_answer(a) for a in item.answers if a.strip()]
            row: dict[str, Any] = {
                "id": item.qid,
                "question": item.question,
                "gold": item.gold,
                "retrieved": docs[: max(ks)],
            }
            for k in ks:
                if item.gold is not None:
                    row[f"hit@{k}"] = float(item.gold in docs[:k])
                text = normalize_answer(" ".join(h.text for h in hits[:k]))
                row[f"contains@{k}"] = float(any(a in text for a in answers))
            rows.append(row)
            if tick:
                tick()
    keys = [key for key in rows[0] if "@" in key] if rows else []
    mean = {key: sum(r[key] for r in rows if key in r) / len(rows) for key in keys}
    return mean, rows


_NEGATION = re.compile(
    r"\b(no|not|neither|nor|none|cannot|can't|didn't|doesn't|don't|isn't|wasn't|weren't|"
    r"without|failed to|unrelated|insignificant)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(may|might|unclear|uncertain|inconclusive|possibly|further studies)\b", re.I
)


def decision(answer: str) -> str:
    """A yes / no / maybe reading of an answer, for PubMedQA's decision accuracy.

    A reply that starts with the word is taken at its word; otherwise negation cues read as
    "no", hedges as "maybe", and the rest as "yes" (a plain rule, stated in the README).
    """
    first = re.match(r"\W*(yes|no|maybe)\b", answer, re.IGNORECASE)
    if first:
        return first.group(1).lower()
    if _NEGATION.search(answer):
        return "no"
    return "maybe" if _HEDGE.search(answer) else "yes"


def answer_eval(
    qa: QASet,
    name: str,
    config: RunConfig,
    llm: Any,
    strategy: str = "zero-shot",
    thresholds: Any = None,
    k: int = 5,
    limit: int | None = None,
    tick: Callable[[], None] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Answer every question with ``llm`` over an index of the set's passages, and score it.

    EM, F1, ROUGE-L and BLEU against the gold answers; citation precision and recall against
    the gold passage; the share of answer sentences whose citations check out; the refusal
    rate; latency per answer; and, for PubMedQA, yes / no / maybe decision accuracy.
    """
    from kenning.answer import ask
    from kenning.answer.citations import SUPPORTED
    from kenning.answer.sentences import citations as strip_citations

    MissingExtra.require("rouge_score", "rouge-score", "eval")
    MissingExtra.require("sacrebleu", "sacrebleu", "eval")
    if not qa.passages:
        raise ConfigError("this QA set has no passages (contexts) to answer from")
    items = qa.items[:limit] if limit else qa.items
    index, names = corpus_index(qa.as_corpus(), name, config)
    predictions, extra = [], []
    with index:
        for item in items:
            answer = ask(index, item.question, llm, k=k, strategy=strategy, thresholds=thresholds)
            by_n = {s.n: names.get(Path(s.path).stem) for s in answer.sources}
            cited = [by_n[n] for s in answer.sentences for n in s.citations if by_n.get(n)]
            plain = " ".join(strip_citations(s.text)[0] for s in answer.sentences) or answer.text
            predictions.append(
                {"id": item.qid, "answer": plain, "citations": list(dict.fromkeys(cited))}
            )
            extra.append(
                {
                    "refused": float(answer.refused),
                    "verified": (
                        sum(s.status == SUPPORTED for s in answer.sentences) / len(answer.sentences)
                        if answer.sentences
                        else None
                    ),
                    "attributed": (
                        sum(s.attributed for s in answer.sentences) / len(answer.sentences)
                        if answer.sentences
                        else None
                    ),
                    "seconds": answer.timings["total"],
                    "decision": decision(plain) if item.decision else None,
                    "gold_decision": item.decision,
                    "completion_tokens": answer.usage.completion_tokens,
                }
            )
            if tick:
                tick()
    mean, rows = score_predictions(QASet(items, qa.passages), predictions)
    for row, more in zip(rows, extra, strict=True):
        row.update(more)
    mean["refusal_rate"] = sum(r["refused"] for r in rows) / len(rows)
    verified = [r["verified"] for r in rows if r["verified"] is not None]
    mean["verified_sentences"] = sum(verified) / len(verified) if verified else 0.0
    attributed = [r["attributed"] for r in rows if r["attributed"] is not None]
    # of the sentences, the share kenning cited because the model wrote no usable citation
    mean["attributed_sentences"] = sum(attributed) / len(attributed) if attributed else 0.0
    seconds = sorted(r["seconds"] for r in rows)
    mean["seconds_mean"] = sum(seconds) / len(seconds)
    mean["seconds_p50"] = seconds[len(seconds) // 2]
    decided = [r for r in rows if r["gold_decision"]]
    if decided:
        mean["decision_accuracy"] = sum(r["decision"] == r["gold_decision"] for r in decided) / len(
            decided
        )
    return mean, rows
