"""A Hydra callback that writes summary.md and summary.json at a sweep's root: job, overrides, status, result.

Each job records its own line in its folder (so this works with any launcher, joblib and SLURM included);
the sweep's process gathers them at the end."""

import json
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

RECORD = "job_result.json"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    try:
        return float(value)
    except (TypeError, ValueError):
        return None if value is None else str(value)


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra_cfg = job_return.hydra_cfg.hydra
        if hydra_cfg.mode is None or hydra_cfg.mode.name != "MULTIRUN":
            return
        ok = job_return.status == JobStatus.COMPLETED
        record = {
            "job": int(hydra_cfg.job.num),
            "overrides": " ".join(job_return.overrides or []),
            "status": job_return.status.name,
            "result": _plain(job_return.return_value) if ok else repr(job_return._return_value),
            "folder": str(hydra_cfg.runtime.output_dir),
        }
        Path(hydra_cfg.runtime.output_dir, RECORD).write_text(json.dumps(record, indent=2))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = sorted((json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RECORD}")), key=lambda r: r["job"])
        if not records:
            return
        (sweep_dir / "summary.json").write_text(json.dumps(records, indent=2))
        lines = ["| job | overrides | status | result |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['job']} | `{r['overrides']}` | {r['status']} | {_format(r['result'])} |" for r in records]
        (sweep_dir / "summary.md").write_text("\n".join(lines) + "\n")
        print(f"[sweep] {len(records)} jobs summarised in {sweep_dir / 'summary.md'}")


def _format(result: Any) -> str:
    if isinstance(result, float):
        return f"{result:.6g}"
    if isinstance(result, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in result.items())
    return str(result)
