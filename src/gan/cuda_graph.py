"""The whole batch as one CUDA graph (model.cuda_graph=true): the D step(s), the G step, both optimizer steps and the
EMA are recorded once and replayed every batch, so a launch-bound GPU step costs one launch instead of hundreds.

The graph replays the eager step function itself, so both compute the same thing. What a graph needs and how it is
met: the same shapes and memory addresses every batch (each batch is copied into a fixed buffer; batches are full,
src/data/loader.py), no read back to the host inside the step (none there, tests/test_host_reads.py), random noise
drawn inside the graph (CUDA's generator supports it, and its state is checkpointed as before), Adam's state on the
device (capturable=True), and constants that stay constant (learning-rate schedules change a rate the graph holds,
so they keep the eager step: `why_not_captured`). A lazily applied penalty gets a second graph for the batches it
is due on. The first `warmup_batches` batches run eagerly on a side stream, as CUDA graph capture asks: kernels are
chosen and the optimizers create their state. A capture that fails says so in one line and the run goes on eagerly.
"""

import logging
from collections.abc import Callable
from typing import Protocol

import torch

log = logging.getLogger(__name__)

# real images, their labels (conditional GANs; else None), whether the penalty is due -> the batch's logged values
StepFunction = Callable[[torch.Tensor, torch.Tensor | None, bool], dict[str, torch.Tensor]]


class Recorder(Protocol):
    """What the captured step needs of CUDA: run a function as a warm-up, and record one to replay."""

    def warm_up(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]: ...

    def record(self, fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        """Record fn without running it: (replay, the tensors fn returned, which each replay rewrites)."""


class CudaGraphs:
    """torch.cuda's graphs: warm-ups on a side stream, one private memory pool per graph."""

    def __init__(self) -> None:
        self._side = torch.cuda.Stream()

    def warm_up(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        self._side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._side):
            out = fn()
        torch.cuda.current_stream().wait_stream(self._side)
        return out

    def record(self, fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph.replay, out


class CapturedStep:
    def __init__(self, step: StepFunction, warmup_batches: int = 3, recorder: Recorder | None = None) -> None:
        self.step = step
        self.warmup_left = warmup_batches
        self.recorder = recorder or CudaGraphs()
        self.failed: str | None = None  # why capturing failed; the step then runs eagerly
        self._graphs: dict[bool, tuple[Callable[[], None], dict[str, torch.Tensor]]] = {}
        self._real: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None, penalty_due: bool) -> dict[str, torch.Tensor]:
        if self.failed is not None:
            return self.step(real, labels, penalty_due)
        if self.warmup_left > 0:
            self.warmup_left -= 1
            return self.recorder.warm_up(lambda: self.step(real, labels, penalty_due))
        if self._real is None:
            self._real, self._labels = real.clone(), None if labels is None else labels.clone()
        if real.shape != self._real.shape:  # never with full batches; kept correct anyway
            return self.step(real, labels, penalty_due)
        self._real.copy_(real)
        if labels is not None:
            self._labels.copy_(labels)
        if penalty_due not in self._graphs and not self._capture(penalty_due):
            return self.step(real, labels, penalty_due)
        replay, out = self._graphs[penalty_due]
        replay()
        return out

    def _capture(self, penalty_due: bool) -> bool:
        torch.clear_autocast_cache()  # casts made before the capture must not be baked into the graph
        try:
            self._graphs[penalty_due] = self.recorder.record(lambda: self.step(self._real, self._labels, penalty_due))
        except Exception as err:  # noqa: BLE001 (any failure of the capture: the eager step is always correct)
            self.failed = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            log.warning(f"[step] model.cuda_graph=true: capturing the step failed ({self.failed}); training goes on "
                        "with the eager step")
            return False
        return True


def why_not_captured(device: torch.device, lightning_updates_reason: str | None, scheduled: bool, compiled: bool,
                     capturable_optimizers: bool) -> str | None:
    """Why this run cannot replay its step as a CUDA graph (None: it can)."""
    if device.type != "cuda":
        return f"it trains on {device.type}, not a CUDA GPU"
    if lightning_updates_reason is not None:
        return f"its updates go through Lightning's wrappers ({lightning_updates_reason})"
    if scheduled:
        return "a learning-rate schedule changes the rate each batch, and a graph holds it as a constant"
    if compiled:
        return "model.compile=true already compiles G and D (use one of the two)"
    if not capturable_optimizers:
        return "an optimizer has no capturable=True option (Adam and AdamW have)"
    return None
