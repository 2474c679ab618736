"""Batch embedding speed of the default embedder's runtimes, and what each costs in quality.

    python benchmarks/embed.py throughput                  # every option, same texts, one sitting
    python benchmarks/embed.py throughput --docs 200 --rounds 3 --options onnx-0.1,torch,auto
    python benchmarks/embed.py throughput --options auto,torch --batch-sizes 8,16,32
    python benchmarks/embed.py scifact auto@200/32 int8@200/32 auto@256/0 --out r.jsonl
    python benchmarks/embed.py report r.jsonl              # the builds as one table, and verdicts

``throughput`` chunks a sample of SciFact documents with kenning's own chunker (default
ChunkSpec, title prepended) and embeds exactly those chunk texts with each option through
``embed_documents`` (batches sorted by tokens, of the embedder's size or each of
``--batch-sizes``). The options take turns for ``--rounds``
rounds and each keeps its fastest round, so other work on the machine slows all of them alike.
Printed per option: chunks/s, SciFact docs/s on the sample, the p50 query time, and the
lowest cosine of its vectors against torch's (1.0000: the same vectors, the same index).

``scifact OPTION@SIZE/OVERLAP ...`` builds a fresh index of all 5,183 SciFact documents per
spec with ``Index.add`` (files read, chunked, embedded, written: what a user waits for),
then scores the 300 test queries through kenning's evaluation code (``kenning.eval``) and
prints chunks per document, docs/s and nDCG@10 (hybrid, the default search, and dense).
Each build takes minutes on 2 cores; results are also appended to ``--out`` as JSON lines,
which ``report`` prints as one table with each spec's nDCG@10 change against ``auto@200/32``
(the default) and the verdict on int8: offered only if it loses at most 0.005 nDCG@10.

Options, one setting changed at a time: ``onnx-0.1`` (kenning 0.1: the plain export,
worker threads never spin), ``onnx-ort`` (the plain export, onnxruntime's default session
options), ``onnx-plain`` (the plain export, kenning's batch session: one thread per usable
core, spinning on, all graph optimisations), ``onnx`` (kenning's batch session on the fused
graph: attention, layer norms and GELU as onnxruntime's fused kernels), ``onnx-nospin``,
``onnx-basic`` and ``onnx-extended`` (``onnx`` with spinning off, or a lower graph
optimisation level), ``torch`` (sentence-transformers on the CPU), ``torch-bf16`` (the same
with bfloat16 matrix products under autocast), ``cuda`` (torch on the GPU), ``auto`` (what
``MiniLMEmbedder()`` picks here: its calibration is printed, or the GPU where there is one),
``int8`` (dynamic int8 quantisation of the fused
graph, one scale per weight matrix, the word-embedding table included, for documents and
queries alike: other vectors, so it needs nDCG@10 within 0.005 of fp32; see DEPENDENCIES.md),
``int8-pc`` (the same with one scale per output channel), ``int8-docs`` (what
``MiniLMEmbedder(precision="int8")`` runs: per-channel int8 MatMuls and attention projections
for document batches only, queries on the fp32 graph; the embedding table and each layer's
FFN output MatMul, the most sensitive to int8 as it reads the GELU activations with their
outlier channels, stay fp32) and ``int8-docs-all`` (the same with the FFN outputs int8 too).

``throughput --reference onnx`` measures the cosines against the fp32 ONNX vectors instead
of torch's (the same vectors within 1e-4, and no torch to load): the screen for int8
variants, printed as the lowest, the 1st percentile and the mean cosine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kenning import Index
from kenning.config import cache_dir
from kenning.embedders import MiniLMEmbedder, embedders
from kenning.embedders.hardware import machine_key
from kenning.embedders.minilm import CALIBRATION_FILE, QUERY_INT8_GRAPH
from kenning.embedders.onnxgraph import export_minilm_onnx, minilm_dir, quantize_minilm
from kenning.eval.datasets import BeirDataset, load_beir, write_corpus
from kenning.eval.evaluate import RunConfig, run_queries, score_configs
from kenning.search import Hit
from kenning.text.chunking import ChunkSpec, chunk_document, embedding_text
from kenning.text.loaders import load

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


class _Tuned(MiniLMEmbedder):
    """MiniLM with its batch session built another way; the same id, so the same index."""

    graph_level: str | None = None  # an ort.GraphOptimizationLevel name
    session_kind = "kenning"  # kenning | ort-defaults | spin-off
    fused = True

    def __init__(self) -> None:
        super().__init__(runtime="onnx")

    def _onnx_path(self) -> Path:
        return export_minilm_onnx(minilm_dir(), fused=self.fused)

    def _session_options(self, ort: Any, workload: str) -> Any:
        if workload == "batch" and self.session_kind == "ort-defaults":
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            return opts
        if workload == "batch" and self.session_kind == "spin-off":
            return super()._session_options(ort, "query")
        opts = super()._session_options(ort, workload)
        if self.graph_level:
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, self.graph_level)
        return opts


class Int8MiniLM(_Tuned):
    """Dynamic int8 quantisation of the fused graph. Its vectors differ, so its id does.

    One scale per weight matrix (``per_channel=False``, onnxruntime's default) or one per
    output column: MiniLM's weights have outlier columns that a single scale crushes.
    """

    id = "minilm-int8"
    fused = True
    per_channel = False

    def _onnx_path(self) -> Path:
        fp32 = export_minilm_onnx(minilm_dir(), fused=True)
        kind = "int8pc-fused" if self.per_channel else "int8-fused"
        target = fp32.with_name(fp32.name.replace("fp32-fused", kind))
        if not target.exists():
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            quantize_dynamic(
                str(fp32),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=self.per_channel,
                # the fused operators carry no shape information for the quantiser
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            os.replace(tmp, target)
        return target


class Int8DocsAll(MiniLMEmbedder):
    """``precision="int8"`` with the FFN output MatMuls int8 too; id ``minilm``."""

    def __init__(self) -> None:
        super().__init__(runtime="onnx", precision="int8")

    def _int8_path(self) -> Path:
        return quantize_minilm(self._onnx_path(), QUERY_INT8_GRAPH)  # the same graph


def _variant(**attrs: Any) -> Callable[[], MiniLMEmbedder]:
    cls = type("Variant", (_Tuned,), attrs)
    return lambda: cls()


OPTIONS: dict[str, Callable[[], MiniLMEmbedder]] = {
    "onnx-0.1": _variant(session_kind="spin-off", fused=False),
    "onnx-ort": _variant(session_kind="ort-defaults", fused=False),
    "onnx-plain": _variant(fused=False),
    "onnx-nospin": _variant(session_kind="spin-off"),
    "onnx-basic": _variant(graph_level="ORT_ENABLE_BASIC"),
    "onnx-extended": _variant(graph_level="ORT_ENABLE_EXTENDED"),
    "onnx": lambda: MiniLMEmbedder(runtime="onnx"),
    "torch": lambda: MiniLMEmbedder(runtime="torch", device="cpu"),
    "cuda": lambda: MiniLMEmbedder(runtime="torch", device="cuda"),
    "torch-bf16": lambda: MiniLMEmbedder(runtime="torch-bf16", device="cpu"),
    "auto": lambda: MiniLMEmbedder(),
    "int8": Int8MiniLM,
    "int8-pc": lambda: type("PerChannel", (Int8MiniLM,), {"per_channel": True})(),
    "int8-docs": lambda: MiniLMEmbedder(runtime="onnx", precision="int8"),
    "int8-docs-all": Int8DocsAll,
}
QUERIES = [
    "how do I undo the last commit",
    "vitamin D and bone density",
    "sleep and blood pressure",
]


def sample_chunks(data: BeirDataset, n_docs: int, spec: ChunkSpec, work: Path) -> list[str]:
    """What the model embeds of ``n_docs`` random documents, chunked as kenning indexes
    them."""
    ids = sorted(data.corpus)
    random.Random(0).shuffle(ids)
    sample = BeirDataset({i: data.corpus[i] for i in ids[:n_docs]}, {}, {})
    folder = work / f"sample-{n_docs}"
    write_corpus(sample, folder)
    counter = MiniLMEmbedder(runtime="onnx").count_tokens
    texts = []
    for path in sorted(folder.glob("*.md")):
        doc = load(path, path.read_bytes())
        texts += [embedding_text(c.indexed_text) for c in chunk_document(doc, spec, counter)]
    return texts


def throughput(args: argparse.Namespace) -> None:
    data = load_beir(args.data, "test")
    work = Path(tempfile.mkdtemp(prefix="kenning-embed-"))
    texts = sample_chunks(data, args.docs, ChunkSpec(), work)
    names = args.options.split(",") if args.options else list(OPTIONS)
    if args.reference not in names:
        names.append(args.reference)
    if args.batch_sizes:  # the reference at the embedder's own batch size
        args.reference = f"{args.reference}/{args.batch_sizes[0]}"
    print(f"# {machine_key()}", flush=True)
    print(
        f"# {args.docs} SciFact documents, {len(texts)} chunks "
        f"({len(texts) / args.docs:.2f} per document), {args.rounds} rounds",
        flush=True,
    )
    calibration = cache_dir() / CALIBRATION_FILE
    if args.recalibrate and calibration.exists():
        calibration.unlink()
    embs: dict[str, MiniLMEmbedder] = {}
    for name in names:
        for size in args.batch_sizes or [None]:
            emb = OPTIONS[name]()
            if size:
                emb.batch_size = size
            embs[f"{name}/{size}" if size else name] = emb
    query_ms: dict[str, float] = {}
    for name, emb in embs.items():  # load models, build sessions, warm memory arenas
        emb.embed_documents(texts[:32])
        times = []
        for q in QUERIES * 4:
            t = time.perf_counter()
            emb.embed_query(q)
            times.append(1000 * (time.perf_counter() - t))
        query_ms[name] = float(np.median(times))
    auto = next((e for k, e in embs.items() if k.partition("/")[0] == "auto"), None)
    if isinstance(auto, MiniLMEmbedder):
        runtime = auto.batch_runtime
        known = (
            json.loads(calibration.read_text())["calibrations"].get(machine_key(), {})
            if calibration.exists()
            else "none (a GPU takes batches uncalibrated)"
        )
        print(f"# auto: batches through {runtime}; calibration {known}", flush=True)
    best = dict.fromkeys(embs, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        for name, emb in embs.items():
            t = time.perf_counter()
            vectors[name] = emb.embed_documents(texts)
            best[name] = min(best[name], time.perf_counter() - t)
        print(f"# round {r + 1} done, load {os.getloadavg()[0]:.1f}", flush=True)
    ref = vectors[args.reference]
    print(
        f"\n{'option':<14} {'chunks/s':>9} {'docs/s':>8} {'query ms':>9} "
        f"{'min cos':>8} {'p1 cos':>8} {'mean cos':>8}   (cosines against {args.reference})",
        flush=True,
    )
    for name in embs:
        cos = (vectors[name] * ref).sum(axis=1)
        print(
            f"{name:<14} {len(texts) / best[name]:9.1f} {args.docs / best[name]:8.2f} "
            f"{query_ms[name]:9.1f} {cos.min():8.4f} {np.quantile(cos, 0.01):8.4f} "
            f"{cos.mean():8.4f}",
            flush=True,
        )


def scifact(args: argparse.Namespace) -> None:
    data = load_beir(args.data, "test")
    work = args.work
    names = write_corpus(data, work / "docs")
    print(f"# {machine_key()}", flush=True)
    print(
        f"\n{'spec':<18} {'chunks':>7} {'per doc':>8} {'seconds':>8} {'docs/s':>7} "
        f"{'chunks/s':>8} {'hybrid':>7} {'dense':>7}",
        flush=True,
    )
    for text in args.specs:
        option, _, sizes = text.partition("@")
        size, _, overlap = (sizes or "200/32").partition("/")
        spec = ChunkSpec(int(size), int(overlap))
        emb = OPTIONS[option]()
        if embedders.name_of(type(emb)) is None:  # a benchmark variant: register it here only
            embedders.register(f"bench-{option}")(type(emb))
        emb.embed_documents(["warm up"] * 8)  # model loads and exports stay out of the timing
        db = work / f"{option}-{spec.size}-{spec.overlap}.db"
        for old in work.glob(db.name + "*"):
            old.unlink()
        with Index.open(db, embedder=emb, chunking=spec) as index:
            t = time.perf_counter()
            index.add([work / "docs"])
            took = time.perf_counter() - t
            chunks = int(index.status()["chunks"])
            metrics = {}
            for mode in ("hybrid", "dense"):
                config = RunConfig(
                    mode, mode=mode, embedder=emb.id, chunk_size=spec.size, overlap=spec.overlap
                )

                def doc_id(_qid: str, hit: Hit) -> str | None:
                    return names.get(Path(hit.path).stem)

                run = run_queries(index, data.queries, config, doc_id, k=100)
                metrics[mode] = score_configs([(config, run)], data.qrels, (10, 100))[0].mean
        row = {
            "spec": text,
            "machine": machine_key(),
            "runtime": getattr(emb, "batch_runtime", option),
            "docs": len(data.corpus),
            "chunks": chunks,
            "seconds": round(took, 1),
            "docs_per_s": round(len(data.corpus) / took, 2),
            "chunks_per_s": round(chunks / took, 1),
            "ndcg10_hybrid": round(metrics["hybrid"]["ndcg@10"], 4),
            "ndcg10_dense": round(metrics["dense"]["ndcg@10"], 4),
            "load": round(os.getloadavg()[0], 1),
        }
        print(
            f"{text:<18} {chunks:7d} {chunks / len(data.corpus):8.2f} {took:8.0f} "
            f"{row['docs_per_s']:7.2f} {row['chunks_per_s']:8.1f} "
            f"{row['ndcg10_hybrid']:7.4f} {row['ndcg10_dense']:7.4f}",
            flush=True,
        )
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


#: the most hybrid nDCG@10 a faster option may lose against fp32 at the same chunking
INT8_TOLERANCE = 0.005
#: the default hybrid nDCG@10 on SciFact must stay at or above this (issue #11)
HYBRID_FLOOR = 0.735


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for f in args.files for line in f.read_text().splitlines() if line]
    latest = {row["spec"]: row for row in rows}  # a spec measured again replaces the old row
    base = latest.get("auto@200/32") or latest.get("onnx@200/32")
    print(
        f"{'spec':<18} {'chunks/doc':>10} {'docs/s':>7} {'chunks/s':>8} {'hybrid':>7} "
        f"{'vs default':>10} {'dense':>7} {'load':>5}"
    )
    for spec, row in latest.items():
        delta = row["ndcg10_hybrid"] - base["ndcg10_hybrid"] if base else float("nan")
        print(
            f"{spec:<18} {row['chunks'] / row['docs']:10.2f} {row['docs_per_s']:7.2f} "
            f"{row['chunks_per_s']:8.1f} {row['ndcg10_hybrid']:7.4f} {delta:+10.4f} "
            f"{row['ndcg10_dense']:7.4f} {row['load']:5.1f}"
        )
    for spec, row in latest.items():
        option, _, sizes = spec.partition("@")
        fp32 = latest.get(f"auto@{sizes}") or latest.get(f"onnx@{sizes}")
        if option.startswith("int8") and fp32:
            loss = fp32["ndcg10_hybrid"] - row["ndcg10_hybrid"]
            ok = loss <= INT8_TOLERANCE and row["ndcg10_hybrid"] >= HYBRID_FLOOR
            verdict = "offer it" if ok else "do not offer it"
            print(
                f"\n{option} at {sizes}: hybrid nDCG@10 {row['ndcg10_hybrid']:.4f} vs fp32 "
                f"{fp32['ndcg10_hybrid']:.4f}, a loss of {loss:.4f} (tolerance "
                f"{INT8_TOLERANCE}, floor {HYBRID_FLOOR}): {verdict}; "
                f"{row['docs_per_s'] / fp32['docs_per_s']:.2f}x "
                "the docs/s (separate builds, so the machine's load differed)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="a BEIR folder (SciFact)")
    sub = ap.add_subparsers(dest="command", required=True)
    tp = sub.add_parser("throughput", help="every option on the same chunk texts")
    tp.add_argument("--docs", type=int, default=100, help="documents in the sample")
    tp.add_argument("--rounds", type=int, default=2)
    tp.add_argument("--options", help=f"comma-separated, from: {', '.join(OPTIONS)}")
    tp.add_argument(
        "--batch-sizes",
        type=lambda v: [int(x) for x in v.split(",")],
        help="comma-separated: each option at each batch size (rows OPTION/SIZE)",
    )
    tp.add_argument(
        "--reference", default="torch", help="the option the cosines compare with (torch, onnx)"
    )
    tp.add_argument(
        "--recalibrate", action="store_true", help="forget auto's cached calibration first"
    )
    sc = sub.add_parser("scifact", help="full index builds: docs/s and nDCG@10")
    sc.add_argument("specs", nargs="+", metavar="OPTION@SIZE/OVERLAP")
    sc.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kenning-embed")
    sc.add_argument("--out", type=Path, help="append each result here as a JSON line")
    rp = sub.add_parser("report", help="print the JSON lines of scifact --out as one table")
    rp.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    for spec in getattr(args, "specs", []):
        if spec.partition("@")[0] not in OPTIONS:
            sys.exit(f"unknown option in {spec!r}; choose from {', '.join(OPTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"throughput": throughput, "scifact": scifact, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
