"""Write an image folder as LitData chunks for data=streaming:
`python -m src.prepare_data data=folder data.path=/some/images out=<folder or s3://bucket/prefix>`
(see conf/prepare_data.yaml). Each image is decoded as data=folder trains on it (at model.image_size, in
data.channels, composited on data.background) by litdata.optimize's worker processes, with its progress bar."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from src.core.errors import UserError
from src.core.instantiate import instantiate
from src.run.cli import pause_gc, refuse_unknown_keys, run_cli

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> str:
    import numpy as np

    from src.data.folder import DecodeFile, FolderDataModule
    from src.data.streaming import EncodeSample, require_litdata

    litdata = require_litdata()
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, FolderDataModule):
        raise UserError(f"src.prepare_data writes an image folder as chunks, not {datamodule.name}: use data=folder "
                        "data.path=<your images>")
    out = str(cfg.out)
    files = datamodule.readable_files()
    labels = datamodule.image_files(files, None).labels
    counts = np.bincount(labels, minlength=datamodule.num_classes).astype(np.int64)
    encode = EncodeSample(DecodeFile(datamodule.image_size, datamodule.mode, datamodule.background), files, labels,
                          counts)
    try:
        litdata.optimize(fn=encode, inputs=list(range(len(files))), output_dir=out, chunk_bytes=cfg.chunk_bytes,
                         num_workers=cfg.num_workers, mode="overwrite" if cfg.overwrite else None,
                         reorder_files=False)
    except RuntimeError as err:
        if "already contains an optimized" in str(err):
            raise UserError(f"out={out} already holds LitData chunks: pick another folder, or overwrite=true to "
                            "replace them") from err
        raise
    classes = f" data.num_classes={len(counts)}" if len(counts) > 1 else ""
    log.info(f"[data] wrote {len(files)} images of {datamodule.data_dir} ({datamodule.image_size}px, "
             f"{datamodule.channels} channels, {len(counts)} classes) as LitData chunks in {out}; train with: "
             f"python -m src.train data=streaming data.path={out} model.image_size={datamodule.image_size}"
             f" data.channels={datamodule.channels}{classes}")
    return out


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    run_cli(prepare, cfg)


if __name__ == "__main__":
    pause_gc()
    refuse_unknown_keys("prepare_data", sys.argv[1:])
    main()
