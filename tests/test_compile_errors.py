"""A failure inside torch.compile ends the run with one line (src/core/compile_errors.py). On a GPU, Inductor's
channels_last convolution backward crashed with an assertion in its generated code (issue #23); a CPU cannot make
Inductor fail that way, so the tests raise the same kinds of error from the same kinds of place."""

import pytest
from torch._dynamo.exc import BackendCompilerFailed

from src.core.instantiate import user_error_in

GENERATED = "/tmp/torchinductor_root/xy/cxyz.py"  # where Inductor writes the code it runs


def raise_from(filename: str, message: str) -> None:
    code = compile(f"def kernel():\n    raise AssertionError({message!r})\n", filename, "exec")
    scope: dict = {}
    exec(code, scope)  # noqa: S102 (a function whose frame sits in `filename`, as Inductor's generated code does)
    scope["kernel"]()


def caught(fn) -> BaseException:
    with pytest.raises(BaseException) as info:
        fn()
    return info.value


def test_an_assertion_in_inductors_generated_code_is_one_line_even_when_wrapped() -> None:
    inner = caught(lambda: raise_from(GENERATED, "expected size 224==224, stride 16==1 at dim=1\nmore lines"))
    outer = RuntimeError("a wrapper")
    outer.__cause__ = inner
    error = user_error_in(outer)
    assert str(error) == ("model.compile=true failed inside torch.compile (AssertionError: expected size 224==224, "
                          "stride 16==1 at dim=1): train without it (model.compile=false)")


def test_dynamos_own_exceptions_are_one_line() -> None:
    error = user_error_in(BackendCompilerFailed(lambda: None, ValueError("no kernel for this op"), None))
    assert str(error).startswith("model.compile=true failed inside torch.compile (BackendCompilerFailed: ")


def test_the_same_assertion_elsewhere_keeps_its_traceback() -> None:
    assert user_error_in(caught(lambda: raise_from("/work/src/gan/module.py", "a bug of ours"))) is None
