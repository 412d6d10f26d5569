"""A Hydra callback that writes summary.md and summary.json at a sweep's root: job, the swept values, status, quality
(metrics.monitor, measured once at each job's end when the dataset's domain classifier exists), the final losses and
the job's other overrides.

Each job records its own line in its folder (so this works with any launcher, joblib and SLURM included);
the sweep's process gathers them at the end. A job that failed (it returns src.run.cli.JobFailed instead of
stopping the sweep) is FAILED with its one-line error, and the sweep then exits with status 1."""

import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.core.commands import override_key
from src.core.sweeps import swept_first, swept_keys
from src.run.cli import JobFailed

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
        hydra_cfg = config.hydra  # not job_return.hydra_cfg: without the job's config, ${paths.log_dir} can't resolve
        if hydra_cfg.mode is None or hydra_cfg.mode.name != "MULTIRUN":
            return
        ok = job_return.status == JobStatus.COMPLETED
        failed = job_return._return_value if isinstance(job_return._return_value, JobFailed) else None
        swept = swept_keys(hydra_cfg)
        overrides = swept_first(list(job_return.overrides or []), swept)
        result = failed.message if failed is not None else (
            _plain(job_return.return_value) if ok else repr(job_return._return_value))
        monitor = f"metrics/{OmegaConf.select(config, 'metrics.monitor', default='')}"
        record = {
            "job": int(hydra_cfg.job.num),
            "overrides": " ".join(overrides),
            "swept": {override_key(o): o.split("=", 1)[-1] for o in overrides if override_key(o) in swept},
            "status": "FAILED" if failed is not None else job_return.status.name,
            "quality": {monitor: result.pop(monitor)} if isinstance(result, dict) and monitor in result else None,
            "result": result,
            "folder": str(hydra_cfg.runtime.output_dir),
        }
        Path(hydra_cfg.runtime.output_dir, RECORD).write_text(json.dumps(record, indent=2))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = sorted((json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RECORD}")), key=lambda r: r["job"])
        if not records:
            return
        (sweep_dir / "summary.json").write_text(json.dumps(records, indent=2))
        (sweep_dir / "summary.md").write_text(markdown(records))
        print(f"[sweep] {len(records)} jobs summarised in {sweep_dir / 'summary.md'}")
        failed = [r["job"] for r in records if r["status"] != "COMPLETED"]
        if failed:  # the sweep's exit status says so (1); each failed job's line is in the summary
            print(f"Error: {len(failed)} of {len(records)} jobs failed (jobs {', '.join(map(str, failed))}): see "
                  f"{sweep_dir / 'summary.md'}", file=sys.stderr)
            sys.exit(1)


def markdown(records: list[dict]) -> str:
    """The table: job, one column per swept key, status, quality, the final losses, the other overrides."""
    swept = list(dict.fromkeys(k for r in records for k in r.get("swept", {})))
    quality = list(dict.fromkeys(k for r in records for k in (r.get("quality") or {})))
    header = ["job", *swept, "status", *(q.removeprefix("metrics/") for q in quality), "result", "other overrides"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in records:
        values = [r.get("swept", {}).get(k, "") for k in swept]
        scores = [_format((r.get("quality") or {}).get(q, "")) for q in quality]
        other = " ".join(o for o in r["overrides"].split() if override_key(o) not in swept)
        lines.append("| " + " | ".join([str(r["job"]), *values, r["status"], *scores, _format(r["result"]),
                                        f"`{other}`"]) + " |")
    if not quality and any(r["status"] == "COMPLETED" for r in records):
        lines += ["", "No quality column: no job could measure its metrics.monitor at its end; a job's train.log says "
                  "why in its `[metrics]` line (usually: the dataset has no domain classifier yet; `python -m "
                  "src.train_classifier data=<dataset> model.image_size=<size>` trains one, see "
                  "docs/quality.md)."]
    return "\n".join(lines) + "\n"


def _format(result: Any) -> str:
    if isinstance(result, float):
        return f"{result:.6g}"
    if isinstance(result, dict):
        return ", ".join(f"{k}={_format(v)}" for k, v in result.items())
    return str(result)
