"""Console lines go through Python logging, so a run's train.log (Hydra's file handler) holds what the console showed.

conf/hydra/job_logging/ picks these classes: the console shows bare messages without breaking a progress bar, the
file adds time and source, and both drop a short list of known-harmless third-party lines and say batches where
Lightning's lines name its step counter (src/core/loop.py)."""

import logging
import sys
import warnings

from tqdm import tqdm

from src.core.loop import TRANSLATED

# Lines Lightning prints that tell a user of this template nothing it can act on: adverts, its max_time stop (the
# run's own line says max_minutes was reached and how to go on: src/run/budget.py), and that it leaves the model
# summary to the template's (src/callbacks/model_summary.py).
NOISE = ("💡 Tip: ", "Time limit reached. Elapsed time is ", "Trainer already configured with model summary callbacks")


class ConsoleHandler(logging.Handler):
    """Writes through tqdm, which lifts a running progress bar above the line and redraws it below; warnings and
    errors go to stderr, the rest to stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout)
        except Exception:  # noqa: BLE001 (logging's own convention: a handler never raises)
            self.handleError(record)


class KnownNoise(logging.Filter):
    """Drops the adverts; Lightning's lines that name its step counter say batches, which is what it counts here."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for steps, batches in TRANSLATED.items():
            if message.startswith(steps):
                record.msg, record.args = batches + message[len(steps):], ()
        return not message.startswith(NOISE)


def report_error(message: str) -> None:
    """The one line of a refused, failed or stopped command: on stderr, and in train.log when the run has one
    (logging set up by Hydra from conf/hydra/job_logging/; without it, e.g. train() called from Python, a print)."""
    sys.stdout.flush()  # what the progress bar wrote goes first: the error line is the last thing on the screen
    if any(isinstance(handler, ConsoleHandler) for handler in logging.getLogger().handlers):
        logging.getLogger("src").error(message)
    else:
        print(message, file=sys.stderr, flush=True)


def quiet_known_warnings() -> None:
    """Third-party warnings about their own internals, nothing a user of the template can change."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated",
                            module=r"lightning\.pytorch\.utilities\._pytree")
    # DDP with channels_last on MNIST: a one-channel conv weight ([w, 1, 4, 4]) is NHWC and NCHW at once, and its
    # gradient may carry the other stride in the size-1 dimension; the memory is the same, DDP compares the numbers.
    warnings.filterwarnings("ignore", message=r"Grad strides do not match bucket view strides")
    # The GAN module moves batches itself (transfer_batch_to_device) and the DataModule only transforms them after.
    warnings.filterwarnings("ignore", message=r"You have overridden `transfer_batch_to_device` in `LightningModule`")
    # Lightning's logging interval counts across epochs here: a short epoch loses no logs.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
    # A new run is refused a folder that holds a run (src/run/launch_checks.py): checkpoints there are a resume's.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
