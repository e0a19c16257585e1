"""Warnings filters of the command line (``train.py``, ``lightning-meta``): third-party warnings a user cannot act on.

Each filter names one message of one library; every other warning, ours included, is shown as before.
``pyproject.toml`` (``[tool.pytest.ini_options] filterwarnings``) filters the same messages in the tests.
"""

from __future__ import annotations

import warnings

#: (message regex, category) of warnings raised inside Lightning about Lightning's own code or about figures it
#: cannot compute; nothing in a run's config changes them.
THIRD_PARTY = (
    # lightning.pytorch.utilities._pytree calls torch's deprecated LeafSpec (Lightning 2.6 with torch >= 2.9).
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # the model summary cannot size bf16/fp16 weights; training and checkpoints are unaffected.
    (r"Precision .* is not supported by the model summary", UserWarning),
)

#: Lightning's ModelCheckpoint warns when its folder already holds files; resuming a run into its own folder
#: (``ckpt_path=...`` with ``hydra.run.dir`` of that run) is meant to, so that case is not warned about.
CHECKPOINT_DIR_NOT_EMPTY = r"Checkpoint directory .* exists and is not empty"


def quiet_third_party_warnings() -> None:
    """Installs the filters of ``THIRD_PARTY`` for the rest of the process."""
    for message, category in THIRD_PARTY:
        warnings.filterwarnings("ignore", message=message, category=category)


def quiet_resumed_checkpoint_dir() -> None:
    """Ignores ModelCheckpoint's 'exists and is not empty' warning (call it when a run resumes from a checkpoint)."""
    warnings.filterwarnings("ignore", message=CHECKPOINT_DIR_NOT_EMPTY)
