"""Exceptions for what a user can fix; the CLIs print them as a single line and exit with status 2."""


class UserError(Exception):
    """Bad input (config value, file, combination): the message says what to change."""


class TrainingDiverged(UserError):
    """A loss or a weight stopped being finite: the message names the batch and the last good checkpoint."""


class SweepError(UserError):
    """A mistake of the whole sweep, not of one job (e.g. multirun with DDP): the sweep stops at once instead of
    recording the job as failed and going on."""
