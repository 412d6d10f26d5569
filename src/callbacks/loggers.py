"""The trainer's loggers as the callbacks need them."""

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter


def tensorboard_writers(trainer: L.Trainer) -> list[SummaryWriter]:
    """The SummaryWriters of the trainer's TensorBoard loggers (none when logging is off)."""
    return [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
