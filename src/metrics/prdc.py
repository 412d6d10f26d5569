"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020): how much of the samples lie
on the real data's manifold, and how much of the real manifold the samples reach, each manifold being the union of
balls around its points with the distance to the point's k-th nearest neighbour as radius.

One pass over the sample-to-real distances gives all four, in chunks of rows (memory stays flat at 10k x 10k).
torch-fidelity ships precision/recall ("prc") but no density/coverage, and computing its own distances (twice, with
kthvalue) it costs about 3x this pass on a CPU; tests/test_prdc.py checks that both give the same precision and
recall. Both sets should be the same size (the papers use 10k against 10k): the values depend on it."""

import torch

# Rows of a distance matrix computed at once: 1000 x 10000 floats is 40 MB.
CHUNK = 1000


def knn_radii(points: torch.Tensor, *ks: int) -> torch.Tensor:
    """len(points) x len(ks): each point's distance to its k-th nearest other point (the point itself is the 0th)."""
    nearest = [torch.cdist(block, points).topk(max(ks) + 1, dim=1, largest=False).values
               for block in points.split(CHUNK)]
    return torch.cat(nearest)[:, list(ks)]


@torch.no_grad()
def prdc(real: torch.Tensor, fake: torch.Tensor, pr_k: int = 3, dc_k: int = 5) -> dict[str, float]:
    """- precision: the share of samples inside some real point's ball (radius: distance to its pr_k-th nearest real
      neighbour); recall: the share of real points inside some sample's ball (pr_k-th nearest sample). Closed balls,
      as in Kynkäänniemi et al.'s definition (and torch-fidelity).
    - density: how many real balls (radius: the dc_k-th nearest real neighbour) hold a sample, on average over the
      samples, divided by dc_k: about 1 when the samples follow the real distribution, above 1 where they crowd
      into dense real regions; coverage: the share of real balls holding at least one sample. Open balls, as in
      Naeem et al.'s code."""
    real, fake = real.float(), fake.float()
    real_pr, real_dc = knn_radii(real, pr_k, dc_k).unbind(dim=1)
    fake_pr = knn_radii(fake, pr_k)[:, 0]
    precise = torch.zeros(len(fake), dtype=torch.bool, device=fake.device)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    hits = 0
    for start in range(0, len(fake), CHUNK):
        distances = torch.cdist(fake[start:start + CHUNK], real)  # samples of this chunk x real points
        precise[start:start + CHUNK] = (distances <= real_pr).any(dim=1)
        recalled |= (distances <= fake_pr[start:start + CHUNK, None]).any(dim=0)
        inside = distances < real_dc
        hits += int(inside.sum())
        covered |= inside.any(dim=0)
    return {"precision": float(precise.double().mean()), "recall": float(recalled.double().mean()),
            "density": hits / (dc_k * len(fake)), "coverage": float(covered.double().mean())}
