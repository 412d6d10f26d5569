"""The training step never waits on the device except on batches that log, report, sample or save: counted on a
CPU by wrapping every Tensor method that reads a GPU tensor back to the host (tests/host_reads.py)."""

import pytest
from omegaconf import open_dict

from src.train import train
from tests.host_reads import HostReadCounter

CASES = {
    "default": ["model=dcgan28"],
    # fresh noise per step, a penalty with a double backward, augmentation, a schedule whose rates are logged
    "wgan-gp": ["model=dcgan28", "loss=wgan", "regularizer=gp", "model.n_critic=2", "augment=diffaugment",
                "scheduler=linear_decay", "model.discriminator.batch_norm=false"],
    # ADA: p adjusted on the device from D's real logits every 2 D steps, and logged
    "ada": ["model=dcgan28", "augment=ada", "augment.interval=2"],
}


@pytest.mark.parametrize("case", CASES)
def test_only_batches_that_log_sample_or_save_read_from_the_device(train_cfg, case: str) -> None:
    every = {"trainer.log_every_n_steps": 4, "report_every_n_batches": 6, "sample_every_n_batches": 9,
             "checkpoint_every_n_batches": 10}
    cfg = train_cfg(*CASES[case], "max_batches=20", *(f"{key}={n}" for key, n in every.items()))
    with open_dict(cfg):
        cfg.callbacks.host_reads = {"_target_": "tests.host_reads.HostReadCounter"}
    train(cfg)
    counter = HostReadCounter.last
    due = {b for b in range(1, 21) if any(b % n == 0 for n in every.values())} | counter.epoch_ends
    quiet = [b for b in range(1, 21) if b not in due]
    assert quiet, "the intervals leave no quiet batch: the test would check nothing"
    assert {b: dict(counter.where[b]) for b in quiet if counter.reads[b]} == {}
    assert counter.reads[4] > 0  # the counter does see the reads of a logging batch
