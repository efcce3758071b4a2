"""The model card's validation-to-test gap compares like with like, or says what differs."""

from __future__ import annotations

import pytest

from search.results.gap import describe, val_to_test

SEARCHED = {"val_acc": 0.90, "val_epochs": 2, "val_train_images": 54_000}
CONFIRMED = SEARCHED | {"confirmed_val_acc": 0.91, "confirmed_seeds": 3, "confirmed_epochs": 6}


def test_the_gap_takes_the_validation_score_of_the_same_training_length() -> None:
    gap = val_to_test(CONFIRMED, test_acc=0.92, epochs=6, train_images=60_000)
    assert gap["val_acc"] == 0.91 and gap["val_epochs"] == 6
    assert gap["gap"] == pytest.approx(-0.01)
    assert gap["differs"] == ["training images 54,000 vs 60,000"]
    assert describe(gap) == (
        "-0.0100 (confirmed validation, mean of 3 fresh seeds, minus test; "
        "not like for like: training images 54,000 vs 60,000)"
    )
    # A retrain for the search's 2 epochs on the same 54k: the search score, like for like.
    same = val_to_test(CONFIRMED, test_acc=0.89, epochs=2, train_images=54_000)
    assert same["validation"] == "search validation, one run" and same["differs"] == []
    assert (
        describe(same) == "+0.0100 (search validation, one run, minus test; same epochs and images)"
    )


def test_a_gap_across_training_lengths_says_so() -> None:
    gap = val_to_test(SEARCHED, test_acc=0.93, epochs=6, train_images=60_000)
    assert gap["differs"] == ["epochs 2 vs 6", "training images 54,000 vs 60,000"]
    assert "not like for like: epochs 2 vs 6" in describe(gap)


def test_an_old_export_or_a_hand_written_config() -> None:
    old = val_to_test({"val_acc": 0.9}, test_acc=0.9, epochs=6, train_images=60_000)
    assert old["differs"] == ["the validation run's epochs and images were not recorded"]
    assert val_to_test({}, test_acc=0.9, epochs=6, train_images=60_000) is None
    assert describe(None).startswith("n/a")
