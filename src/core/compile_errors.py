"""A failure inside torch.compile (model.compile=true) as one line: Dynamo's and Inductor's own tracebacks run to
hundreds of lines about generated code a user of the template cannot change."""

import traceback

from src.core.errors import UserError

# Where compiled code fails: Inductor and the kernels it writes into its cache folder. (Dynamo's frames are not
# enough: torch wraps some eager functions, the optimizers' among them, in Dynamo's disable decorator.)
COMPILER_FILES = ("torch/_inductor/", "torchinductor_")


def raised_by_the_compiler(err: BaseException) -> bool:
    """Dynamo's and Inductor's own exceptions (BackendCompilerFailed, ...), or anything raised inside Inductor or
    the code it generated (its assertions on sizes and strides)."""
    if type(err).__module__.startswith(("torch._dynamo", "torch._inductor")):
        return True
    frames = traceback.extract_tb(err.__traceback__)
    return any(part in frame.filename.replace("\\", "/") for frame in frames for part in COMPILER_FILES)


def compile_failure(err: BaseException) -> UserError | None:
    """The one-line error for a failure raised inside torch.compile, else None."""
    if not raised_by_the_compiler(err):
        return None
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    what = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return UserError(f"model.compile=true failed inside torch.compile ({what[:300]}): train without it "
                     "(model.compile=false)")
