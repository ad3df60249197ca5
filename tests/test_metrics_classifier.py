"""Classifier accuracy: spec §7's preprocessing reaches a (randomly initialised) ResNet-50."""

import numpy as np
import pytest
import torch
from torchvision.models import resnet50

from i2sb.metrics.classifier import IMAGENET_MEAN, IMAGENET_STD, classifier_accuracy


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return resnet50(weights=None).eval()


def constant_images(values):
    """One 32x32 image per (r, g, b) triple, each channel constant."""
    return np.stack(
        [np.broadcast_to(np.array(v, np.uint8)[:, None, None], (3, 32, 32)) for v in values]
    )


def captured_inputs(model):
    seen = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    return seen, handle


def test_the_model_sees_224_pixel_normalised_images(resnet):
    images = constant_images([(0, 128, 255), (51, 102, 204)])
    seen, handle = captured_inputs(resnet)
    classifier_accuracy(images, np.zeros(2, np.int64), resnet, "cpu", batch_size=2)
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (2, 3, 224, 224)
    # constant channels stay constant under bicubic resizing: the value is (v/255 - mean) / std
    for image, x in zip(images, seen[0], strict=True):
        for c in range(3):
            expected = (image[c, 0, 0] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
            torch.testing.assert_close(x[c], torch.full((224, 224), expected), atol=1e-5, rtol=0)


def test_accuracy_is_top1_against_the_labels(resnet):
    images = np.random.default_rng(1).integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    seen, handle = captured_inputs(resnet)
    classifier_accuracy(images, np.zeros(3, np.int64), resnet, "cpu", batch_size=3)
    handle.remove()
    with torch.no_grad():
        predicted = resnet(seen[0]).argmax(1).numpy()
    one_wrong = np.where(np.arange(3) == 1, (predicted + 1) % 1000, predicted)
    assert classifier_accuracy(images, predicted, resnet, "cpu", batch_size=2) == 1.0
    assert classifier_accuracy(images, one_wrong, resnet, "cpu", batch_size=3) == 2 / 3


def test_label_count_must_match(resnet):
    with pytest.raises(ValueError, match="labels"):
        classifier_accuracy(constant_images([(1, 2, 3)]), np.zeros(2, np.int64), resnet, "cpu")


def test_accuracy_shows_progress_per_batch(caplog):
    caplog.set_level("INFO", logger="i2sb")
    always_class_0 = lambda x: torch.nn.functional.one_hot(  # noqa: E731
        torch.zeros(len(x), dtype=torch.long), 10
    ).float()
    images = constant_images([(0, 0, 0)] * 3)
    assert (
        classifier_accuracy(images, np.zeros(3, np.int64), always_class_0, "cpu", batch_size=2) == 1
    )
    assert "classifier accuracy (3 images): 2/2 batch (100%)" in caplog.text
