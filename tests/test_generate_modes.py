"""src.generate's sampling tools: mode=interpolate (slerp paths, PNG grid, GIF), truncation=psi, and output that
depends on the seed only, not on batch_size. The latent maths on its own, then the real CLI on short runs."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from src.core.errors import UserError
from src.data.synthetic import write_mnist
from src.gan.sampling import latent_batches, latents, sample, slerp, to_uint8, truncate
from src.generate import generate, interpolate
from src.run.compose import compose_config
from src.train import train
from tests.conftest import FAST, run_cli


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize("psi", [0.05, 0.7, 2.0])
def test_truncation_bounds_z_and_keeps_the_components_inside(psi: float) -> None:
    plain, truncated = latents(2000, 64, seed=5), latents(2000, 64, seed=5, truncation=psi)
    assert truncated.abs().max() <= psi
    inside = plain.abs() <= psi
    assert torch.equal(truncated[inside], plain[inside])  # untouched where |z| <= psi
    # The redrawn ones follow N(0, 1) restricted to [-psi, psi]: mean 0, variance 1 - 2 psi phi(psi) / (2 Phi(psi) - 1).
    redrawn = truncated[~inside].double()
    assert len(redrawn) == pytest.approx(plain.numel() * 2 * (1 - normal_cdf(psi)), rel=0.05)
    density = math.exp(-psi**2 / 2) / math.sqrt(2 * math.pi)
    std = math.sqrt(1 - 2 * psi * density / (2 * normal_cdf(psi) - 1))
    assert redrawn.mean().item() == pytest.approx(0, abs=4 * std / math.sqrt(len(redrawn)))
    assert redrawn.std().item() == pytest.approx(std, rel=0.05)


def test_truncate_redraws_only_what_lies_beyond() -> None:
    noise = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 3.0]])
    uniforms = torch.tensor([[0.5, 0.0, 0.0, 0.0, 0.999999]])
    out = truncate(noise, uniforms, 1.0)
    assert out[0, 0] == pytest.approx(0.0, abs=1e-6)  # the median of the truncated normal
    assert out[0, 1:4].tolist() == [-0.5, 0.0, 0.5]
    assert 0.999 < out[0, 4] <= 1.0


@pytest.mark.parametrize("truncation", [None, 0.5])
def test_latents_depend_on_the_seed_not_on_the_batch_size(truncation: float | None) -> None:
    whole = latents(37, 100, seed=3, truncation=truncation)
    for batch_size in (1, 4, 16, 100):
        batches = list(latent_batches(37, 100, batch_size, 3, truncation))
        assert [len(b) for b in batches][:-1] == [batch_size] * (len(batches) - 1)
        assert torch.equal(torch.cat(batches), whole)
    assert torch.equal(latents(37, 100, seed=3, truncation=truncation), whole)
    assert not torch.equal(latents(37, 100, seed=4, truncation=truncation), whole)


def test_slerp_follows_the_arc_and_falls_back_to_lerp_when_parallel() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    path = slerp(a, b, 5)
    assert path.shape == (1, 5, 2) and torch.equal(path[0, 0], a[0]) and torch.equal(path[0, -1], b[0])
    assert torch.allclose(path.norm(dim=-1), torch.ones(1, 5))  # on the circle (lerp's midpoint has norm 0.71)
    assert torch.allclose(path[0, 2], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    z = torch.randn(3, 100, generator=torch.Generator().manual_seed(0))
    for end in (2 * z, -z, z):  # parallel, antiparallel, the same: the arc is undefined, the line is not
        line = slerp(z, end, 3)
        assert torch.isfinite(line).all() and torch.allclose(line[:, 1], (z + end) / 2)


class FixedGenerator(nn.Module):
    """A generator made by hand whose images change strongly with z (a trained G's first batches hardly do)."""

    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, 48), nn.Tanh(), nn.Unflatten(1, (3, 4, 4)))
        torch.nn.init.normal_(self.net[0].weight, std=1.0, generator=torch.Generator().manual_seed(0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@pytest.mark.parametrize("truncation", [None, 0.8])
def test_interpolation_ends_are_the_samples_of_its_two_latents(truncation: float | None) -> None:
    generator = FixedGenerator(16)
    path_latents, images = interpolate(generator, 16, paths=3, steps=6, seed=9, batch_size=4,
                                       device=torch.device("cpu"), truncation=truncation)
    assert path_latents.shape == (3, 6, 16) and images.shape == (3, 6, 3, 4, 4) and images.dtype == torch.uint8
    ends = latents(6, 16, seed=9, truncation=truncation)  # samples 0..5 of mode=grid with that seed
    assert torch.equal(path_latents[:, 0], ends[0::2]) and torch.equal(path_latents[:, -1], ends[1::2])
    assert torch.equal(images[:, 0], to_uint8(sample(generator, ends[0::2])))
    assert torch.equal(images[:, -1], to_uint8(sample(generator, ends[1::2])))
    assert (images[:, 1:] != images[:, :-1]).any(dim=(2, 3, 4)).all()  # every step moves


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two short conv_gan runs on MNIST files (conv_gan's first batches already vary with z): plain and
    class-conditional."""
    root = tmp_path_factory.mktemp("runs")
    write_mnist(root / "data")
    for name, extra in (("plain", []), ("conditional", ["model.conditional=true"])):
        train(compose_config("train", [*FAST, "model=conv_gan", *extra, "max_batches=1", "~callbacks.progress_bar",
                                       f"paths.data_dir={root / 'data'}"], root / name))
    return {name: root / name for name in ("plain", "conditional")}


def cli(run: Path, out: Path, *overrides: str) -> Path:
    """`python -m src.generate` as a user runs it."""
    result = run_cli("src.generate", f"ckpt_path={run}", f"output_dir={out}", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def make(run: Path, out: Path, *overrides: str) -> Path:
    """The same in this process (no start-up time)."""
    return generate(compose_config("generate", [f"ckpt_path={run}", f"output_dir={out}", *overrides]))


@pytest.mark.slow  # starts a process
def test_interpolate_writes_png_gif_and_npz_whose_ends_are_grid_samples(runs, tmp_path: Path) -> None:
    grid = np.load(make(runs["plain"], tmp_path / "grid", "num_samples=6", "seed=4", "batch_size=1") / "samples.npz")
    out = cli(runs["plain"], tmp_path / "walk", "mode=interpolate", "interpolation.paths=3", "interpolation.steps=5",
              "seed=4", "batch_size=1")
    walk = np.load(out / "interpolation.npz")
    assert walk["images"].shape == (3, 5, 1, 28, 28) and walk["latents"].shape == (3, 5, 100)
    assert np.array_equal(walk["latents"][:, 0], grid["latents"][0::2])
    assert np.array_equal(walk["latents"][:, -1], grid["latents"][1::2])
    assert np.array_equal(walk["images"][:, 0], grid["images"][0::2])
    assert np.array_equal(walk["images"][:, -1], grid["images"][1::2])
    assert not np.array_equal(walk["images"][:, 0], walk["images"][:, -1])

    with Image.open(out / "interpolation.png") as png:
        assert png.size == (2 + 5 * 30, 2 + 3 * 30)  # 5 steps across, 3 paths down, 28 px images with 2 px padding
    with Image.open(out / "interpolation.gif") as gif:
        # There and back: steps 0..4 then 3..1. (Pillow would merge identical frames; these differ.)
        assert gif.n_frames == 2 * 5 - 2 and gif.info["loop"] == 0 and gif.info["duration"] == 100
        assert gif.size == (2 + 3 * 30, 2 + 30)  # the 3 paths side by side


def test_output_depends_on_the_seed_not_on_the_batch_size(runs, tmp_path: Path) -> None:
    first = np.load(make(runs["plain"], tmp_path / "a", "num_samples=20", "seed=7", "batch_size=20") / "samples.npz")
    again = np.load(make(runs["plain"], tmp_path / "b", "num_samples=20", "seed=7", "batch_size=20") / "samples.npz")
    batched = np.load(make(runs["plain"], tmp_path / "c", "num_samples=20", "seed=7", "batch_size=3") / "samples.npz")
    other = np.load(make(runs["plain"], tmp_path / "d", "num_samples=20", "seed=8", "batch_size=20") / "samples.npz")
    assert np.array_equal(again["images"], first["images"]) and np.array_equal(again["latents"], first["latents"])
    assert np.array_equal(batched["latents"], first["latents"])
    # The same latents through G in batches of another size: equal up to the rounding of G's float kernels.
    assert np.abs(batched["images"].astype(int) - first["images"]).max() <= 1
    assert not np.array_equal(other["latents"], first["latents"])
    assert np.abs(other["images"].astype(int) - first["images"]).max() > 1


@pytest.mark.slow  # starts a process
def test_truncation_in_both_modes(runs, tmp_path: Path) -> None:
    grid = np.load(cli(runs["plain"], tmp_path / "grid", "num_samples=8", "truncation=0.5") / "samples.npz")
    assert grid["images"].shape == (8, 1, 28, 28) and np.abs(grid["latents"]).max() <= 0.5
    assert (tmp_path / "grid" / "samples.png").is_file()
    walk = np.load(make(runs["plain"], tmp_path / "walk", "mode=interpolate", "interpolation.paths=4",
                        "truncation=0.5") / "interpolation.npz")
    assert np.array_equal(walk["latents"][:, 0], grid["latents"][0:8:2])  # the same truncated latents as the grid's
    assert np.abs(walk["latents"][:, [0, -1]]).max() <= 0.5


def test_a_conditional_run_interpolates_with_the_class_fixed(runs, tmp_path: Path) -> None:
    grid = np.load(make(runs["conditional"], tmp_path / "grid", "num_samples=4", "class_id=3", "batch_size=1")
                   / "samples.npz")
    walk = np.load(make(runs["conditional"], tmp_path / "walk", "mode=interpolate", "interpolation.paths=2",
                        "interpolation.steps=3", "class_id=3", "batch_size=1") / "interpolation.npz")
    assert walk["labels"].tolist() == [3, 3]
    assert np.array_equal(walk["images"][:, 0], grid["images"][0::2])
    assert np.array_equal(walk["images"][:, -1], grid["images"][1::2])
    mixed = np.load(make(runs["conditional"], tmp_path / "mixed", "mode=interpolate", "interpolation.paths=10",
                         "interpolation.steps=2") / "interpolation.npz")
    labels = mixed["labels"].tolist()
    assert labels == sorted(labels) and len(set(labels)) > 1  # one class a path, in proportion to the training data


@pytest.mark.slow  # starts a process
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("mode=walk", "Error: mode=walk is not a mode of src.generate: use mode=grid (samples.png and samples.npz) "
                      "or mode=interpolate (interpolation.png, .gif and .npz)"),
        ("truncation=-0.5", "Error: truncation must be a number above 0 (e.g. truncation=0.7: latent components "
                            "beyond 0.7 are drawn again), or null for none; got -0.5"),
    ],
)
def test_a_bad_mode_or_truncation_is_one_line_from_the_cli(tmp_path: Path, override: str, expected: str) -> None:
    result = run_cli("src.generate", f"ckpt_path={tmp_path}", override)  # refused before any checkpoint is read
    assert result.returncode == 2 and result.stderr == expected + "\n"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["num_samples=0"], "num_samples must be positive, got 0: e.g. num_samples=64"),
        (["num_samples=-5"], "num_samples must be positive, got -5: e.g. num_samples=64"),
        (["batch_size=0"], "batch_size must be positive, got 0: e.g. batch_size=500"),
        (["device=tpu9"], "device=tpu9 is not a device: use device=auto, cpu or cuda"),
        (["truncation=0"], "truncation must be a number above 0 (e.g. truncation=0.7"),
        (["truncation=high"], "got 'high'"),
        (["truncation=true"], "got True"),
        (["seed=abc"], "seed must be a whole number from 0 to 4294967295, got 'abc': e.g. seed=42"),
        (["mode=interpolate", "interpolation.steps=1"], "interpolation.steps must be a whole number of at least 2"),
        (["mode=interpolate", "interpolation.paths=0"], "interpolation.paths must be positive, got 0"),
        (["mode=interpolate", "interpolation.ms_per_frame=0.5"], "interpolation.ms_per_frame must be a positive "
                                                                 "integer"),
        (["mode=interpolate", "per_class=2"], "per_class is for mode=grid; mode=interpolate keeps one class along"),
    ],
)
def test_bad_generate_settings_are_one_line(tmp_path: Path, overrides: list[str], expected: str) -> None:
    with pytest.raises(UserError) as caught:
        generate(compose_config("generate", [f"ckpt_path={tmp_path}", *overrides]))
    assert expected in str(caught.value) and "\n" not in str(caught.value)
