"""The table of the module's networks printed when training starts: Lightning's summary without its FLOPs.

Lightning counts FLOPs only for a module with an `example_input_array`; a GAN module has none (its two networks take
different inputs), so Lightning's summary ended every run's header with `Total FLOPs: 0` and a column of zeros."""

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count

log = logging.getLogger(__name__)


def table(columns: list[tuple[str, list[str]]]) -> list[str]:
    """Left-aligned columns under their names, between rules."""
    widths = [max(len(name), *(len(str(value)) for value in values)) for name, values in columns]
    rows = [[name for name, _ in columns], *zip(*(values for _, values in columns), strict=True)]
    lines = [" | ".join(f"{str(cell):<{width}}" for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    rule = "-" * max(len(line) for line in lines)
    return [lines[0], rule, *lines[1:], rule]


class ModelSummary(LightningModelSummary):
    def __init__(self, enabled: bool = True, max_depth: int = 1) -> None:
        """enabled: trainer.enable_model_summary, which stays the switch (Lightning skips its own summary when the
        callbacks hold this one)."""
        super().__init__(max_depth=max_depth if enabled else 0)

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        totals = {
            "Trainable params": get_human_readable_count(trainable_parameters),
            "Non-trainable params": get_human_readable_count(total_parameters - trainable_parameters),
            "Total params": get_human_readable_count(total_parameters),
            "Total estimated model params size (MB)": get_formatted_model_size(model_size),
            "Modules in train mode": total_training_modes["train"],
            "Modules in eval mode": total_training_modes["eval"],
        }
        rows = table([(name, values) for name, values in summary_data if name != "FLOPs"])
        log.info("\n".join(["", *rows, *(f"{value!s:<10}{name}" for name, value in totals.items())]))
