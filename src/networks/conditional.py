"""Class conditioning for any of the five architectures, added around the network instead of inside it.

- ConditionalGenerator: a learned class embedding joined (concatenated) to z; the wrapped generator is built for
  z_dim + embedding_dim inputs (conf/shared/model.yaml does that through the `generator_input` resolver). With
  class_batch_norm, every BatchNorm of the wrapped generator also takes its scale and shift from the class
  (conditional BatchNorm, de Vries et al. 2017, as in SNGAN-proj and BigGAN).
- ProjectionDiscriminator (Miyato & Koyama 2018): logit = psi(phi(x)) + <embed(y), phi(x)>, where phi is everything
  of the wrapped discriminator's `net` but its last layer and psi that last layer. The unconditional logit is the
  wrapped network's own output, computed the same way, so a zero embedding gives exactly the unconditional logit.
  So a discriminator that can be conditioned keeps its layers in an nn.Sequential named `net` that ends in its output
  layer (every architecture in src/networks/ does; ProjectionDiscriminator refuses one that doesn't in one line).

Unconditional models are not wrapped at all: their modules, state_dict keys and outputs stay as they were."""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.core.errors import UserError


class ClassBatchNorm(nn.Module):
    """A BatchNorm without its own affine part, scaled and shifted per class. The labels are set by the
    ConditionalGenerator before each forward (the networks' own forward takes only z)."""

    def __init__(self, norm: _BatchNorm, num_classes: int) -> None:
        super().__init__()
        features = norm.num_features
        self.norm = type(norm)(features, eps=norm.eps, momentum=norm.momentum, affine=False)
        self.scale, self.shift = nn.Embedding(num_classes, features), nn.Embedding(num_classes, features)
        with torch.no_grad():  # every class starts from the BatchNorm's own initialisation
            self.scale.weight.copy_(norm.weight.detach().expand(num_classes, -1))
            self.shift.weight.copy_(norm.bias.detach().expand(num_classes, -1))
        self.labels: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1, x.size(1)) + (1,) * (x.dim() - 2)
        return self.norm(x) * self.scale(self.labels).view(shape) + self.shift(self.labels).view(shape)


def with_class_batch_norm(generator: nn.Module, num_classes: int) -> nn.Module:
    """Replace every affine BatchNorm of `generator` with a ClassBatchNorm, in place."""
    norms = [(name, m) for name, m in generator.named_modules() if isinstance(m, _BatchNorm) and m.affine]
    if not norms:
        raise UserError(f"model.class_batch_norm=true: {type(generator).__module__}'s generator has no BatchNorm")
    for name, norm in norms:
        parent_name, _, child = name.rpartition(".")
        setattr(generator.get_submodule(parent_name), child, ClassBatchNorm(norm, num_classes))
    return generator


class ConditionalGenerator(nn.Module):
    def __init__(self, generator: nn.Module, num_classes: int, embedding_dim: int,
                 class_batch_norm: bool = False) -> None:
        super().__init__()
        self.net = with_class_batch_norm(generator, num_classes) if class_batch_norm else generator
        self.class_batch_norm = class_batch_norm  # only then do the BatchNorms need the labels
        self.embed = nn.Embedding(num_classes, embedding_dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)  # on the scale of z, which it is joined to
        # The real data's class shares: labels drawn for fakes and for sampling without labels follow them.
        self.register_buffer("class_probs", torch.full((num_classes,), 1.0 / num_classes))

    @property
    def num_classes(self) -> int:
        return self.embed.num_embeddings

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """y=None: labels in proportion to class_probs, assigned in order (no random draw, so sampling without
        labels, as metrics and src.generate do, leaves every random stream alone)."""
        if y is None:
            y = self.proportional_labels(z.size(0), z.device)
        for norm in self.net.modules() if self.class_batch_norm else ():
            if isinstance(norm, ClassBatchNorm):
                norm.labels = y
        return self.net(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))

    def proportional_labels(self, n: int, device: torch.device) -> torch.Tensor:
        quantiles = (torch.arange(n, device=device, dtype=torch.float64) + 0.5) / n
        edges = self.class_probs.to(device, torch.float64).cumsum(0)
        return torch.searchsorted(edges, quantiles).clamp_(max=self.num_classes - 1)

    def random_labels(self, n: int, device: torch.device) -> torch.Tensor:
        """n labels drawn from class_probs (the training step's fake labels; the global random stream, so resume
        is exact), by the inverse of their cumulative shares at uniform draws: unlike torch.multinomial, which
        checks its probabilities on the host, this never makes a GPU wait (and a CUDA graph can hold it)."""
        edges = self.class_probs.to(device).cumsum(0)
        return torch.searchsorted(edges, torch.rand(n, device=device) * edges[-1], right=True).clamp_(
            max=self.num_classes - 1)


class ProjectionDiscriminator(nn.Module):
    def __init__(self, discriminator: nn.Module, num_classes: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if not isinstance(getattr(discriminator, "net", None), nn.Sequential):
            raise UserError(needs_net(discriminator, "has no nn.Sequential attribute `net`"))
        self.net = discriminator
        self.embed = nn.Embedding(num_classes, self._feature_size(image_shape))
        nn.init.zeros_(self.embed.weight)  # starts as the unconditional D; SNGAN-proj initialises it small too

    @torch.no_grad()
    def _feature_size(self, image_shape: tuple[int, int, int]) -> int:
        """phi's size per image; a `net` whose layers do not end in one logit per image is refused in one line."""
        was_training = self.net.training
        self.net.eval()
        try:
            hidden = self.net.net[:-1](torch.zeros(2, *image_shape))
            logits = self.net.net[-1](hidden)
        except Exception as err:  # its forward does more than run `net` (layers outside it, a reshape between)
            raise UserError(needs_net(self.net, f"its `net` does not run on {tuple(image_shape)} images alone "
                                                f"({type(err).__name__}: {err})".replace("\n", " "))) from err
        finally:
            self.net.train(was_training)
        if logits.numel() != 2:
            raise UserError(needs_net(self.net, f"its `net` ends in {logits.numel() // 2} values per image, not one "
                                                "logit"))
        return hidden.flatten(1).size(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x), flattened to one vector per image."""
        return self.net.net[:-1](x).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.net.net[:-1](x)
        logits = self.net.net[-1](hidden).view(-1)  # psi(phi(x)): the wrapped D's own output
        if y is None:
            return logits
        return logits + (self.embed(y).to(hidden.dtype) * hidden.flatten(1)).sum(dim=1)


def needs_net(discriminator: nn.Module, why: str) -> str:
    return (f"model.conditional=true: {type(discriminator).__module__}.{type(discriminator).__name__} {why}; the "
            "projection discriminator needs D's layers in an nn.Sequential attribute named `net` whose last layer "
            "outputs D's logit (as every D in src/networks/ does)")


def conditioned_generator(generator: nn.Module, conditional: bool, num_classes: int | None,
                          class_embedding_dim: int, class_batch_norm: bool = False) -> nn.Module:
    """The generator as the GAN trains and saves it: wrapped for its classes when model.conditional. The one place
    that decides it: the GAN module builds G through it, and so do the sampling CLIs when they rebuild a run's G."""
    if class_batch_norm and not conditional:
        raise UserError("model.class_batch_norm=true is conditional BatchNorm: it needs model.conditional=true")
    if not conditional:
        return generator
    if num_classes is None or num_classes < 2:
        raise UserError(f"model.conditional=true needs labelled data with at least 2 classes, got {num_classes}: "
                        "data=folder takes one class per top-level subfolder (data.path/<class>/<images>)")
    return ConditionalGenerator(generator, num_classes, class_embedding_dim, class_batch_norm)
