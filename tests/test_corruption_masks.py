"""Free-form inpainting: published masks, generated masks, and which one a run used."""

import numpy as np
import pytest
import torch

from i2sb.corruption import build_corruption
from i2sb.corruption.masks import GeneratedMasks, PublishedMasks


@pytest.fixture(autouse=True)
def no_preplaced_masks(monkeypatch):
    monkeypatch.delenv("I2SB_FREEFORM_MASKS", raising=False)


@pytest.fixture
def published_file(tmp_path):
    """A small file in the published layout: each key is np.packbits of (N, 256, 256) 0/1."""
    rng = np.random.default_rng(0)
    masks = {
        "10-20% freeform": (rng.random((6, 256, 256)) < 0.15).astype(np.uint8),
        "20-30% freeform": (rng.random((6, 256, 256)) < 0.25).astype(np.uint8),
    }
    path = tmp_path / "imagenet_freeform_masks.npz"
    np.savez(path, **{key: np.packbits(value, axis=None) for key, value in masks.items()})
    return path, masks


@pytest.mark.parametrize(("low", "high"), [(0.1, 0.2), (0.2, 0.3)])
def test_generated_hole_ratios_stay_in_the_task_range(low, high):
    bank = GeneratedMasks((low, high), seed=0)
    ratios = np.array([bank.mask(i, 256).mean() for i in range(1000)])
    assert ratios.min() >= low and ratios.max() <= high
    # Spread over the whole range, not piled at one end (measured means: 0.154 and 0.252).
    assert np.quantile(ratios, 0.1) < low + 0.03 and np.quantile(ratios, 0.9) > high - 0.03


def test_generated_mask_i_depends_only_on_seed_and_i():
    operator = build_corruption("inpaint-freeform1020", 64, mask_source="generated", seed=3)
    x0 = torch.zeros(2, 3, 64, 64)
    _, first = operator(x0, torch.tensor([5, 9]))
    _, second = operator(x0, torch.tensor([2, 5]))
    assert torch.equal(first[0], second[1]) and not torch.equal(first[0], first[1])
    other_seed = build_corruption("inpaint-freeform1020", 64, mask_source="generated", seed=4)
    assert not torch.equal(other_seed(x0, torch.tensor([5, 9]))[1], first)


def test_training_draws_random_masks_reproducibly_from_a_generator():
    operator = build_corruption("inpaint-freeform2030", 64, mask_source="generated")
    x0 = torch.zeros(4, 3, 64, 64)
    draw = [operator(x0, generator=torch.Generator().manual_seed(s))[1] for s in (7, 7, 8)]
    assert torch.equal(draw[0], draw[1]) and not torch.equal(draw[0], draw[2])
    assert len({tuple(m.flatten().tolist()) for m in draw[0]}) == 4


def test_hole_is_white_and_the_rest_untouched():
    operator = build_corruption("inpaint-freeform1020", 64, mask_source="generated")
    x0 = torch.rand(3, 3, 64, 64) * 2 - 1
    x1, mask = operator(x0, torch.arange(3))
    assert mask.shape == (3, 1, 64, 64) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert torch.all(x1[mask.expand_as(x1) == 1] == 1)
    assert torch.equal(x1 * (1 - mask), x0 * (1 - mask))


def test_published_masks_unpack_to_the_saved_arrays(published_file):
    path, masks = published_file
    operator = build_corruption(
        "inpaint-freeform2030", 256, mask_source="published", masks_path=str(path)
    )
    _, mask = operator(torch.zeros(2, 3, 256, 256), torch.tensor([4, 1]))
    assert np.array_equal(mask[:, 0].numpy(), masks["20-30% freeform"][[4, 1]])
    assert (
        operator.mask_source.startswith(f"published npz {path}")
        and "sha256=" in operator.mask_source
    )


def test_published_masks_are_resized_by_nearest_sampling(published_file):
    path, masks = published_file
    operator = build_corruption("inpaint-freeform1020", 64, masks_path=str(path))
    _, mask = operator(torch.zeros(1, 3, 64, 64), torch.tensor([2]))
    assert np.array_equal(mask[0, 0].numpy(), masks["10-20% freeform"][2, ::4, ::4])


def test_auto_uses_a_cached_file_else_generates(published_file, tmp_path):
    path, _ = published_file
    cached = build_corruption("inpaint-freeform1020", 64, cache_dir=str(path.parent))
    assert cached.mask_source.startswith("published npz")
    empty = tmp_path / "empty-cache"
    generated = build_corruption("inpaint-freeform1020", 64, cache_dir=str(empty), seed=2)
    assert generated.mask_source.startswith("generated brush strokes seed=2")


def test_auto_honours_the_environment_variable(published_file, monkeypatch, tmp_path):
    path, _ = published_file
    monkeypatch.setenv("I2SB_FREEFORM_MASKS", str(path))
    operator = build_corruption("inpaint-freeform1020", 64, cache_dir=str(tmp_path / "none"))
    assert operator.mask_source.startswith(f"published npz {path}")


def test_published_index_out_of_range_is_an_error(published_file):
    path, _ = published_file
    operator = build_corruption("inpaint-freeform1020", 64, masks_path=str(path))
    with pytest.raises(ValueError, match="holds 6 masks"):
        operator(torch.zeros(1, 3, 64, 64), torch.tensor([6]))


def test_unreadable_or_wrong_mask_files_name_the_file(tmp_path):
    html = tmp_path / "masks.npz"
    html.write_text("<html>Google Drive can't scan this file for viruses</html>")
    with pytest.raises(ValueError, match="masks.npz is not a readable npz"):
        PublishedMasks(html, "10-20% freeform")
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(10, np.uint8))
    with pytest.raises(KeyError, match="no key '10-20% freeform'"):
        PublishedMasks(other, "10-20% freeform")


def test_indices_must_match_the_batch():
    operator = build_corruption("inpaint-freeform1020", 64, mask_source="generated")
    with pytest.raises(ValueError, match="2 indices for a batch of 3"):
        operator(torch.zeros(3, 3, 64, 64), torch.tensor([0, 1]))


def test_bad_mask_source_is_rejected():
    with pytest.raises(ValueError, match="mask_source must be one of"):
        build_corruption("inpaint-freeform1020", 64, mask_source="drive")
