"""Sample quality: FID, KID and IS through torchmetrics, precision/recall/density/coverage and class coverage, on
Inception-v3 features or on a domain classifier's; one entry per metric in registry.py.

Each image passes the extractor once; the metrics then run on those features (see scores.py). Real statistics
are computed once per (dataset, split, resolution, extractor) and cached on disk (see reference.py)."""
