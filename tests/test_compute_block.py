"""The sampler's compute block follows the image size only: blocks of 4 for small images, 1 above 128 px."""

import torch
from test_sample import make_run

from i2sb.sample.restorer import COMPUTE_BLOCK, LARGE_IMAGE_PIXELS, Restorer, compute_block


def test_the_block_size_reads_the_image_size_only():
    assert compute_block(32, 32) == compute_block(128, 128) == COMPUTE_BLOCK == 4
    assert compute_block(160, 128) == compute_block(256, 256) == 1
    assert LARGE_IMAGE_PIXELS == 128 * 128


def test_the_restorer_runs_large_images_one_per_call_and_small_ones_in_blocks(tmp_path):
    restorer = Restorer.load(make_run(tmp_path / "run"), precision="fp32")
    blocks, network = [], restorer._forward

    def spy(x, step, cond=None, compute_block=0):
        blocks.append((x.shape[-1], compute_block))
        return network(x, step, cond=cond, compute_block=compute_block)

    restorer._forward = spy
    for size in (32, 160):
        restorer.restore(torch.zeros(2, 3, size, size), None, nfe=1, seed=0)
    assert set(blocks) == {(32, 4), (160, 1)}
