"""The training step's two ways to update a network (src/gan/updates.py) and its CUDA-graph replay
(src/gan/cuda_graph.py): each trains the same weights as Lightning's own path, on a CPU. Also who counts batches
and who reads the running sum of what a batch logs."""

import ast
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from omegaconf import open_dict
from torch import nn

from src.gan.contract import MEMBERS
from src.gan.cuda_graph import CapturedStep, why_not_captured
from src.gan.interval_means import IntervalMeans
from src.gan.updates import DirectUpdates, LightningUpdates
from src.train import train

# fresh noise per step, a double-backward penalty on every other batch, augmentation, labels, clipping
BUSY = ["model=dcgan28", "model.conditional=true", "model.n_critic=2", "regularizer=r1", "regularizer.every=2",
        "augment=diffaugment", "model.grad_clip_norm=1.0", "model.ema_decay=0.9", "model.ema_start=0"]


class ListensToBackward(L.Callback):
    """A callback with a backward hook: Lightning's wrappers must then run it, so the step takes their path."""

    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.calls += 1


class Spy(L.Callback):
    """Keeps the module a run trained (train() returns only metrics)."""

    last: L.LightningModule | None = None
    runs = 0
    folder = ""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        Spy.last = pl_module


class ReplayOnCPU:
    """Stands in for CUDA's graphs: `record` runs nothing, each replay runs the function again and writes its results
    into the same tensors, as a replayed graph rewrites its outputs in place."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.warmups = self.recorded = self.replays = 0

    def warm_up(self, fn):
        self.warmups += 1
        return fn()

    def record(self, fn):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        self.recorded += 1
        out: dict[str, torch.Tensor] = {}

        def replay() -> None:
            self.replays += 1
            for name, value in fn().items():
                if name in out:
                    out[name].copy_(value)
                else:
                    out[name] = value.clone()

        return replay, out


class CaptureOnCPU(L.Callback):
    """Replaces the module's step with a CapturedStep over ReplayOnCPU before the first batch."""

    recorder: ReplayOnCPU | None = None

    def __init__(self, fail: bool = False) -> None:
        CaptureOnCPU.recorder = ReplayOnCPU(fail)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.batch_step = CapturedStep(pl_module.adversarial_step, warmup_batches=2, recorder=self.recorder)


def trained(train_cfg, *overrides: str, callbacks: dict | None = None, batches: int = 6,
            resume: str | None = None) -> dict[str, torch.Tensor]:
    """The state a run of `batches` ends with (weights, buffers, the last logged means), in a folder of its own
    (Spy.folder) unless it resumes one."""
    cfg = train_cfg(*overrides, f"max_batches={batches}", "trainer.log_every_n_steps=2", "sample_every_n_batches=3",
                    *([f"resume={resume}"] if resume else []))
    with open_dict(cfg):
        cfg.paths.output_dir = resume or f"{cfg.paths.output_dir}_{Spy.runs}"
        Spy.runs += 1
        cfg.callbacks.spy = {"_target_": "tests.test_step.Spy"}
        cfg.callbacks.update(callbacks or {})
    Spy.folder = cfg.paths.output_dir
    train(cfg)
    module = Spy.last
    return {**{k: v.clone() for k, v in module.state_dict().items()},
            **{f"logged.{k}": torch.tensor(v) for k, v in module.logged_means.items()}}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.allclose(a[k].float(), b[k].float(), rtol=1e-5, atol=1e-6)]
    assert differ == []


@pytest.mark.parametrize("overrides", [[], BUSY], ids=["default", "busy"])
def test_direct_updates_train_the_same_weights_as_lightnings_path(train_cfg, overrides: list[str]) -> None:
    direct = trained(train_cfg, *overrides)
    assert isinstance(Spy.last.updates, DirectUpdates)
    through_lightning = trained(train_cfg, *overrides,
                                callbacks={"listens": {"_target_": "tests.test_step.ListensToBackward"}})
    assert isinstance(Spy.last.updates, LightningUpdates)
    assert Spy.last.global_step == 6  # both count batches
    assert_same(direct, through_lightning)


def test_the_captured_step_replays_the_eager_step(train_cfg) -> None:
    eager = trained(train_cfg, *BUSY)
    captured = trained(train_cfg, *BUSY, callbacks={"capture": {"_target_": "tests.test_step.CaptureOnCPU"}})
    recorder = CaptureOnCPU.recorder
    # 2 eager warm-ups, then one graph for the batches with the lazy penalty and one for the others
    assert (recorder.warmups, recorder.recorded, recorder.replays) == (2, 2, 4)
    assert_same(eager, captured)


def test_a_failed_capture_says_so_in_one_line_and_trains_on_eagerly(train_cfg, logged) -> None:
    eager = trained(train_cfg, *BUSY)
    logged()
    captured = trained(train_cfg, *BUSY, callbacks={"capture": {"_target_": "tests.test_step.CaptureOnCPU",
                                                                "fail": True}})
    lines = [line for line in logged().splitlines() if "capturing the step failed" in line]
    assert lines == ["[step] model.cuda_graph=true: capturing the step failed (RuntimeError: operation not permitted "
                     "when stream is capturing); training goes on with the eager step"]
    assert_same(eager, captured)


def test_cuda_graph_on_a_cpu_trains_eagerly_and_says_why(train_cfg, logged, tmp_path: Path) -> None:
    train(train_cfg("model=mlp_gan", "model.cuda_graph=true"))
    assert "[step] model.cuda_graph=true: the step runs eagerly, since it trains on cpu, not a CUDA GPU" in logged()
    assert (tmp_path / "run" / "generator.pt").is_file()


@pytest.mark.parametrize(("device", "lightning", "scheduled", "compiled", "capturable", "expected"), [
    ("cuda", None, False, False, True, None),
    ("cpu", None, False, False, True, "it trains on cpu, not a CUDA GPU"),
    ("cuda", "fp16's GradScaler", False, False, True, "its updates go through Lightning's wrappers (fp16's"),
    ("cuda", None, True, False, True, "a learning-rate schedule changes the rate each batch"),
    ("cuda", None, False, True, True, "model.compile=true already compiles G and D"),
    ("cuda", None, False, False, False, "an optimizer has no capturable=True option"),
])
def test_what_keeps_the_step_eager(device, lightning, scheduled, compiled, capturable, expected) -> None:
    reason = why_not_captured(torch.device(device), lightning, scheduled, compiled, capturable)
    assert reason == expected if expected is None else reason.startswith(expected)


def test_an_update_inside_one_autocast_region_is_seen_by_the_next_forward() -> None:
    """autocast keeps low-precision copies of weights for the rest of its region: without clearing them after the
    optimizer step, a second D step (n_critic > 1) or the G step under bf16-mixed would use the weights of before."""
    torch.manual_seed(0)
    net, x = nn.Linear(4, 4), torch.randn(2, 4)
    optimizer = torch.optim.SGD(net.parameters(), lr=1.0)
    updates = DirectUpdates(None, (net,), clip_norm=None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = net(x)
        updates.step(optimizer, before.float().sum(), net)
        after = net(x)
    expected = F.linear(x.bfloat16(), net.weight.detach().bfloat16(), net.bias.detach().bfloat16())
    assert not torch.equal(after, before) and torch.equal(after, expected)


def test_logging_is_quiet_about_the_default_step(train_cfg, logged) -> None:
    train(train_cfg("model=mlp_gan"))
    assert "[step]" not in logged()


def test_a_captured_run_stopped_and_resumed_ends_like_one_eager_run(train_cfg) -> None:
    """A resumed run warms up and records its graphs again; the state it continues from is the checkpoint's."""
    eager = trained(train_cfg, *BUSY)  # 6 batches in one go
    capture = {"capture": {"_target_": "tests.test_step.CaptureOnCPU"}}
    trained(train_cfg, *BUSY, callbacks=capture, batches=3)
    resumed = trained(train_cfg, *BUSY, callbacks=capture, resume=Spy.folder)
    recorder = CaptureOnCPU.recorder  # the resumed process's: batches 4-6 = 2 warm-ups + 1 replay
    assert (recorder.warmups, recorder.replays) == (2, 1)
    assert_same(eager, resumed)


def test_the_loggers_the_loss_line_and_the_divergence_stop_read_one_running_sum() -> None:
    """Readers at intervals of their own get the plain means since their last read, across the logging batches'
    pops, and a checkpoint of the sum keeps where each reader stands (#35 item 2)."""
    sums = IntervalMeans()
    line = sums.reader("loss_printer")
    seen = []
    for batch in range(1, 8):
        sums.add({"loss/g": torch.tensor(float(batch)), "loss/d": torch.tensor(-2.0 * batch)})
        seen.append(batch)
        if batch % 2 == 0:
            assert sums.pop() == {"loss/g": batch - 0.5, "loss/d": -2 * batch + 1}
        if batch == 3:
            assert line.means(("loss/g", "loss/d")) == {"loss/g": 2.0, "loss/d": -4.0}
            seen = []
    resumed = IntervalMeans()
    resumed.load_state_dict(sums.state_dict())
    expected = sum(seen) / len(seen)  # batches 4..7, across the pops at 4 and 6
    assert resumed.reader("loss_printer").means(("loss/g",)) == {"loss/g": expected}


def test_the_contract_lists_every_member_the_callbacks_read() -> None:
    """What src/callbacks/ reads of `pl_module` (attributes and getattr) is in src/gan/contract.py or Lightning's."""
    read = set()
    for path in (Path(__file__).parents[1] / "src" / "callbacks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pl_module":
                read.add(node.attr)
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr"
                  and getattr(node.args[0], "id", None) == "pl_module" and isinstance(node.args[1], ast.Constant)):
                read.add(node.args[1].value)
    assert {"logged_means", "running_sums"} <= read
    assert sorted(name for name in read if name not in MEMBERS and not hasattr(L.LightningModule, name)) == []


def test_only_the_loop_adapter_counts_batches() -> None:
    """Lightning's step counter is rewritten by src/core/loop.py alone, through one_batch (#35 item 2)."""
    users = set()
    for path in (Path(__file__).parents[1] / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "src.core.loop":
                names = {alias.name for alias in node.names} & {"count_batch", "uncounted", "one_batch"}
                users |= {f"{path.relative_to(path.parents[2])}:{name}" for name in names}
    assert users == {"src/gan/module.py:one_batch"}
