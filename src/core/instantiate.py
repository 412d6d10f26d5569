"""hydra.utils.instantiate with the project's one-line errors: a UserError raised by a target, a `???` value left
unset, a Lightning misconfiguration or a torch.compile failure reaches the user as itself, not wrapped by Hydra."""

import re

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from src.core.compile_errors import compile_failure
from src.core.errors import UserError


def missing_value(err: MissingMandatoryValue) -> UserError:
    """The `???` key that is missing: for a key that only refers to it (model.num_classes -> data.num_classes ->
    data.path), OmegaConf names the referring key in full_key and the missing one in its message."""
    found = re.search(r"Missing mandatory value: ([\w.]+)", str(err))
    key = found.group(1) if found else err.full_key
    return UserError(f"{key} is required: add {key}=... to the command line")


def user_error_in(err: BaseException) -> UserError | None:
    """Hydra wraps errors raised while instantiating; find ours in the chain. A `???` value read anywhere (e.g.
    src.generate without ckpt_path) is one too, and so is a failure inside torch.compile."""
    chain = []
    while err is not None:
        if isinstance(err, UserError):
            return err
        if isinstance(err, MissingMandatoryValue):
            return missing_value(err)
        chain.append(err)
        err = err.__cause__ or err.__context__
    return next((found for found in map(compile_failure, chain) if found is not None), None)


def instantiate(cfg: DictConfig, **kwargs):
    """hydra.utils.instantiate, re-raising a UserError from the target instead of Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(cfg, **kwargs)
    except MissingMandatoryValue as err:  # a `???` in the config, e.g. data=folder without data.path
        raise missing_value(err) from None
    except InstantiationException as err:
        user_error = user_error_in(err)
        if user_error is not None:
            raise user_error from None
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        if isinstance(err.__cause__, MisconfigurationException):  # Lightning's word for a bad setting
            raise UserError(f"{cfg.get('_target_')}: {err.__cause__}") from err
        if (too_large := out_of_memory(err.__cause__)) is not None:
            raise UserError(f"{cfg.get('_target_')} needs more memory than this machine can give ({too_large}): "
                            "check the sizes in the command (e.g. model.z_dim, the widths) or make the model "
                            "smaller") from err
        raise


def out_of_memory(err: BaseException | None) -> str | None:
    """How much an allocation that failed asked for (torch's CPU and CUDA allocators), else None."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return str(err).splitlines()[0]
    if isinstance(err, RuntimeError) and "can't allocate memory" in str(err):
        asked = re.search(r"allocate (\d+) bytes", str(err))
        return f"it asked for {int(asked.group(1)) / 2**30:,.0f} GiB" if asked else "an allocation failed"
    return None
