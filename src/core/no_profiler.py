"""The Trainer's profiler when none is configured (`+trainer.profiler=simple` or `advanced` still picks Lightning's).

Lightning's default, PassThroughProfiler, records nothing, yet wraps each of the ~70 hook calls of a batch in a new
generator-based context manager; this one hands back the same empty context every time (about a tenth of a
millisecond a batch on 2 CPU cores, benchmarks/train.md)."""

from contextlib import nullcontext

from lightning.pytorch.profilers import PassThroughProfiler

_NOTHING = nullcontext()


class NoProfiler(PassThroughProfiler):
    def profile(self, action_name: str) -> nullcontext:
        return _NOTHING
