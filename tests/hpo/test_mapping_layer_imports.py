"""The mapping layer is a library of its own: importing it, and the pool, loads neither torch nor Lightning."""

from __future__ import annotations

import subprocess
import sys


def test_the_mappings_and_the_pool_import_without_torch_or_lightning():
    code = ("import sys; import lightning_meta.hpo.mappings, lightning_meta.hpo.pool; "
            "from lightning_meta.hpo.mappings import MAPPINGS, ConditionalBestOnAverage; "
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_the_torch_mapping_is_still_there_when_named():
    from lightning_meta.hpo import MetaSurrogate
    from lightning_meta.hpo.mappings import MAPPINGS

    assert MAPPINGS["meta_surrogate"] is MetaSurrogate and MAPPINGS.kind_of(MetaSurrogate) == "meta_surrogate"
