"""The benchmark tables' loaders (benchmarks/hpo/metadatasets.py) on small hand-written tables."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from lightning_meta.errors import DataError
from lightning_meta.hpo.mappings.base import normalized_scores
from tests.benchmarks.hpo_modules import load

metadatasets = load("metadatasets")


def test_hpobench_loader_reads_the_table_format(tmp_path):
    folder = tmp_path / "hpobench_mlp"
    folder.mkdir()
    header = "dataset,openml_task_id,grid_index,alpha,batch_size,depth,learning_rate_init,width," + ",".join(
        f"val_bal_acc_s{i}" for i in range(5))
    rows = ["car,1,0,1e-08,4,1,1e-05,16,0.5,0.6,0.7,0.8,0.9", "kc1,2,0,1.0,256,3,1.0,1024,0.1,0.1,0.1,0.1,0.6"]
    with gzip.open(folder / "hpobench_mlp_tabular.csv.gz", "wt") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    dataset = metadatasets.load("hpobench_mlp", tmp_path)
    assert dataset.tasks == ["car", "kc1"]
    assert dataset.table("car")["objective"].iloc[0] == pytest.approx(0.7)
    assert dataset.table("kc1")["hp_width"].iloc[0] == 1024
    assert dataset.features("car")["log_n_classes"] == pytest.approx(np.log1p(4))
    assert dataset.space.encode([{"alpha": 1.0, "batch_size": 256, "depth": 3, "learning_rate_init": 1.0, "width": 1024}]).shape == (1, 5)
    with pytest.raises(DataError, match="root="):
        metadatasets.load("fcnet", tmp_path)
    with pytest.raises(DataError, match="Unknown"):
        metadatasets.load("imagenet", tmp_path)


def test_fcnet_objective_is_minus_log_mse_so_the_good_end_keeps_its_spread(tmp_path):
    folder = tmp_path / "fcnet"
    folder.mkdir()
    header = ("dataset,grid_index,activation_fn_1,activation_fn_2,batch_size,dropout_1,dropout_2,init_lr,lr_schedule,"
              "n_units_1,n_units_2,n_params,val_mse_s0,val_mse_s1,val_mse_s2,val_mse_s3")
    config = "relu,tanh,8,0.0,0.3,0.0005,cosine,16,32,545"
    mses = {"good": "1e-4,1e-4,1e-4,1e-4", "better": "1e-5,1e-5,1e-5,1e-5", "divergent": "4e7,4e7,4e7,4e7"}
    rows = [f"naval_propulsion,{i},{config},{m}" for i, m in enumerate(mses.values())]
    with gzip.open(folder / "fcnet_tabular.csv.gz", "wt") as handle:
        handle.write("\n".join([header, *rows]) + "\n")
    table = metadatasets.load("fcnet", tmp_path).table("naval_propulsion")
    assert table["objective"].tolist() == pytest.approx([4.0, 5.0, -np.log10(4e7)])
    scores = normalized_scores(table)
    assert scores[1] == pytest.approx(1.0) and scores[0] < 0.95  # on the MSE scale both would be 1.0 to 7 digits
