"""The command line's warnings filters hide the named third-party messages and nothing else."""

import warnings

import pytest

from lightning_meta.cli.quiet import quiet_resumed_checkpoint_dir, quiet_third_party_warnings


def _shown(*messages: tuple[str, type[Warning]], resumed: bool = False) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet_third_party_warnings()
        if resumed:
            quiet_resumed_checkpoint_dir()
        for text, category in messages:
            warnings.warn(text, category)
    return [str(w.message) for w in caught]


LEAFSPEC = ("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
            "treespec.is_leaf()` instead.", FutureWarning)
SUMMARY = ("Precision bf16-mixed is not supported by the model summary.  Estimated model size in MB will not be "
           "accurate. Using 32 bits instead.", UserWarning)
CKPT_DIR = ("Checkpoint directory /runs/x/checkpoints exists and is not empty.", UserWarning)
OURS = ("HyperparameterMapping continues without recording: the pool is read-only", UserWarning)
INTERVAL = ("The number of training batches (2) is smaller than the logging interval Trainer(log_every_n_steps=10).",
            UserWarning)


def test_third_party_messages_nobody_can_act_on_are_hidden():
    assert _shown(LEAFSPEC, SUMMARY) == []


@pytest.mark.parametrize("message", [OURS, INTERVAL, (LEAFSPEC[0], DeprecationWarning), ("Some other thing", FutureWarning)])
def test_our_warnings_and_actionable_ones_are_kept(message):
    assert _shown(message) == [message[0]]


def test_a_non_empty_checkpoint_folder_is_reported_unless_the_run_resumes():
    assert _shown(CKPT_DIR) == [CKPT_DIR[0]]
    assert _shown(CKPT_DIR, OURS, resumed=True) == [OURS[0]]
