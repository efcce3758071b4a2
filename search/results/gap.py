"""The model card's validation-to-test gap, compared like with like or said to be not.

A test score comes from a retrain on every training image for the config's epochs; a search
score from one run on the images outside the validation split, for the epochs that trial
got (fewer, if it was pruned); a confirmed score from fresh seeds at the study's full epoch
budget on that same split. The gap takes the validation score whose training length matches
the retrain (the confirmed one first: several seeds, the full budget) and names whatever
still differs, so it is never read as pure overfitting to the validation split.
"""

from __future__ import annotations

from typing import Any


def _candidates(provenance: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if "confirmed_val_acc" in provenance:
        seeds = provenance.get("confirmed_seeds")
        found.append(
            {
                "validation": f"confirmed validation, mean of {seeds} fresh seeds",
                "val_acc": provenance["confirmed_val_acc"],
                "val_epochs": provenance.get("confirmed_epochs"),
            }
        )
    if "val_acc" in provenance:
        found.append(
            {
                "validation": "search validation, one run",
                "val_acc": provenance["val_acc"],
                "val_epochs": provenance.get("val_epochs"),
            }
        )
    return found


def val_to_test(
    provenance: dict[str, Any], *, test_acc: float, epochs: int, train_images: int
) -> dict[str, Any] | None:
    """The gap (validation minus test) with what it compares; None without a validation
    score (a config that did not come from a study)."""
    found = _candidates(provenance)
    if not found:
        return None
    chosen = next((c for c in found if c["val_epochs"] == epochs), found[0])
    val_images = provenance.get("val_train_images")
    differs = []
    if chosen["val_epochs"] is None or val_images is None:
        differs.append("the validation run's epochs and images were not recorded")
    if chosen["val_epochs"] is not None and chosen["val_epochs"] != epochs:
        differs.append(f"epochs {chosen['val_epochs']} vs {epochs}")
    if val_images is not None and val_images != train_images:
        differs.append(f"training images {val_images:,} vs {train_images:,}")
    return chosen | {
        "gap": chosen["val_acc"] - test_acc,
        "val_train_images": val_images,
        "test_epochs": epochs,
        "test_train_images": train_images,
        "differs": differs,
    }


def describe(gap: dict[str, Any] | None) -> str:
    """The model card's cell: the figure, what it subtracts, and what differs."""
    if gap is None:
        return "n/a (the config came from no study's validation)"
    same = (
        "same epochs and images"
        if not gap["differs"]
        else "not like for like: " + ", ".join(gap["differs"])
    )
    return f"{gap['gap']:+.4f} ({gap['validation']}, minus test; {same})"
