"""Which machine and software a benchmark ran on, so that a figure is never read without its context."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import lightning
import torch

from benchmarks.speed.baseline_l2l import l2l_version


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _our_version() -> str:
    try:
        return version("lightning_meta")
    except PackageNotFoundError:
        return "source checkout (not installed)"


def describe(device: torch.device) -> dict[str, str]:
    """CPU, cores, threads, GPU and library versions, as strings ready for a table."""
    info = {
        "CPU": _cpu_model(),
        "CPU cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "lightning_meta": _our_version(),
        "learn2learn": l2l_version(),
        "device": str(device),
        "load average 1/5/15 min (at start)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if device.type == "cuda":
        info["GPU"] = torch.cuda.get_device_name(device)
        info["CUDA"] = str(torch.version.cuda)
        info["TF32 (conv / matmul)"] = f"{torch.backends.cudnn.allow_tf32} / {torch.backends.cuda.matmul.allow_tf32}"
    return info
