"""The targets judge the figures they are given."""

from __future__ import annotations

from fmnist_bench.targets import targets


def test_targets_judge_the_figures() -> None:
    results = {
        "throughput": {"vgg": {"ratio_defaults": 2.5}, "resnet": {"ratio_defaults": 1.5}},
        "memory": {"peak_rss_bytes": 4 * 2**30},
        "gpu": {"packed": [{"workers": 1, "images_per_s": 10}, {"workers": 4, "images_per_s": 30}]},
        # The first peer run: ours 6.5 points ahead, but its last trial ran 7 minutes late.
        "peer": {
            "test_acc_difference": 0.0654,
            "theirs": {"wall_seconds": 700.0},
            "ours": {"wall_seconds": 1022.0},
        },
    }
    verdicts = {t["target"].split(":")[0]: t["holds"] for t in targets(results, False)}
    assert verdicts["vgg"] and not verdicts["resnet"]
    assert not verdicts["worker peak RSS <= 3 GiB on CPU"]
    assert verdicts["4 packed workers >= 2.5x the images/s of one"]
    assert verdicts["ours >= 3 points above Optuna's recipe in test accuracy, same time"]
    assert not verdicts["ours' search wall <= 1.15x the recipe's"]
