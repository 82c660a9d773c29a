"""CUT and FastCUT in PyTorch, written from the paper and the official release's behaviour, for parity tests.

Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020. What the
official code does, restated here independently of it:

* Anti-aliased sampling (Zhang 2019): a downsampling is a stride-1 convolution, its norm and ReLU, then
  a blur-pool (reflection padding 1, the binomial [1, 2, 1] filter squared and normalised, stride 2,
  one filter per channel); an upsampling is a blur-upsample (replication padding 1, a stride-2
  transposed convolution with [1, 3, 3, 1] squared, normalised and times 4, padding 2, then one row and
  column dropped on each side) followed by a stride-1 convolution, its norm and ReLU. The filters are
  buffers named ``filt`` in the state dict.
* The generator is one ``nn.Sequential`` called ``model``: with nine blocks, indices 0 (padding), 1
  (conv 7x7), 4 and 8 (the downsampling convolutions, the blur-pools at 7 and 11), 12 to 20 (residual
  blocks), 21 and 25 (blur-upsamples), 22 and 26 (their convolutions), 30 (the last conv 7x7). PatchNCE
  reads the outputs of layers 0, 4, 8, 12 and 16.
* The projection head: one MLP per layer, Linear(C, 256), ReLU, Linear(256, 256), then each vector
  divided by its L2 norm plus 1e-7; the same patch indices (a random permutation's first 256) for a
  source image and its translation, for every image of the batch.
* PatchNCE per layer: keys detached; logits of a query against its own key (positive) and against the
  keys of the other patches of the same image (negatives, the diagonal set to -10), divided by 0.07;
  cross-entropy towards the positive; the mean over patches times lambda_NCE; summed over layers and
  divided by their number.
* One step: the generator runs on ``cat(A, B)`` (CUT's identity term; only A for FastCUT), the batch
  flipped left-right with probability 1/2 under flip equivariance (FastCUT); the discriminator is
  updated first on ``0.5 * (MSE(D(G(A)), 0) + MSE(D(B), 1))``; then the generator and the projection
  head together on ``MSE(D'(G(A)), 1)`` with the updated discriminator, plus the NCE terms (their mean
  with the identity term).
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from tests.tools.torch_reference import ResidualBlock  # the same block in CycleGAN and CUT


def _binomial(taps):
    row = torch.tensor(taps, dtype=torch.float32)
    square = row[:, None] * row[None, :]
    return square / square.sum()


class BlurPool(nn.Module):
    """Reflection pad 1, depthwise binomial 3x3, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer(
            "filt", _binomial([1.0, 2.0, 1.0])[None, None].repeat(channels, 1, 1, 1)
        )

    def forward(self, x):
        x = functional.pad(x, (1, 1, 1, 1), mode="reflect")
        return functional.conv2d(x, self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Replication pad 1, depthwise transposed [1, 3, 3, 1]^2 * 4, stride 2, cropped to 2x."""

    def __init__(self, channels):
        super().__init__()
        kernel = _binomial([1.0, 3.0, 3.0, 1.0]) * 4
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        x = functional.pad(x, (1, 1, 1, 1), mode="replicate")
        y = functional.conv_transpose2d(x, self.filt, stride=2, padding=2, groups=x.shape[1])
        return y[:, :, 1:-1, 1:-1]


class Generator(nn.Module):
    """CUT's ResNet generator: anti-aliased sampling unless told otherwise."""

    def __init__(self, ngf=64, n_blocks=9, channels=3, antialias=True, antialias_up=True):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), nn.InstanceNorm2d(ngf)]
        layers.append(nn.ReLU(True))
        for i in range(2):
            width = ngf * 2**i
            if antialias:
                layers += [nn.Conv2d(width, 2 * width, 3, stride=1, padding=1)]
                layers += [nn.InstanceNorm2d(2 * width), nn.ReLU(True), BlurPool(2 * width)]
            else:
                layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)]
                layers += [nn.InstanceNorm2d(2 * width), nn.ReLU(True)]
        layers += [ResidualBlock(4 * ngf) for _ in range(n_blocks)]
        for i in range(2):
            width = ngf * 2 ** (2 - i)
            if antialias_up:
                layers += [BlurUpsample(width), nn.Conv2d(width, width // 2, 3, padding=1)]
            else:
                layers += [
                    nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1)
                ]
            layers += [nn.InstanceNorm2d(width // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x, layers=None):
        """The output, or with ``layers`` the outputs of those module indices (up to the last one)."""
        if not layers:
            return self.model(x)
        features = []
        for index, module in enumerate(self.model):
            x = module(x)
            if index in layers:
                features.append(x)
            if index == max(layers):
                return features
        raise ValueError(layers)


class Discriminator(nn.Module):
    """The PatchGAN, with CUT's anti-aliased downsampling unless told otherwise."""

    def __init__(self, ndf=64, n_layers=3, channels=3, antialias=True):
        super().__init__()

        def down(c_in, c_out, norm):
            parts = [nn.Conv2d(c_in, c_out, 4, stride=1 if antialias else 2, padding=1)]
            parts += [nn.InstanceNorm2d(c_out)] if norm else []
            parts += [nn.LeakyReLU(0.2, True)]
            return parts + ([BlurPool(c_out)] if antialias else [])

        layers = down(channels, ndf, norm=False)
        width = ndf
        for i in range(1, n_layers):
            layers += down(width, ndf * min(2**i, 8), norm=True)
            width = ndf * min(2**i, 8)
        last = ndf * min(2**n_layers, 8)
        layers += [nn.Conv2d(width, last, 4, padding=1), nn.InstanceNorm2d(last)]
        layers += [nn.LeakyReLU(0.2, True), nn.Conv2d(last, 1, 4, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Projection(nn.Module):
    """One 2-layer MLP per feature layer; samples patches and L2-normalises them."""

    def __init__(self, in_channels, units=256):
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, units), nn.ReLU(), nn.Linear(units, units))
            for c in in_channels
        )

    def forward(self, features, patch_ids):
        out = []
        for mlp, feature, ids in zip(self.mlps, features, patch_ids):
            flat = feature.permute(0, 2, 3, 1).flatten(1, 2)  # [B, H*W, C]
            sampled = flat[:, torch.as_tensor(ids, dtype=torch.long), :].flatten(0, 1)
            projected = mlp(sampled)
            out.append(projected / (projected.norm(p=2, dim=1, keepdim=True) + 1e-7))
        return out


def patch_nce(query, key, batch_size, temperature=0.07):
    """Per-patch PatchNCE losses ``[B * P]`` of queries and keys ``[B * P, U]``."""
    key = key.detach()
    units = query.shape[1]
    positive = (query * key).sum(dim=1, keepdim=True)
    q = query.view(batch_size, -1, units)
    k = key.view(batch_size, -1, units)
    negative = torch.bmm(q, k.transpose(1, 2))
    patches = q.shape[1]
    eye = torch.eye(patches, dtype=torch.bool)[None]
    negative = negative.masked_fill(eye, -10.0).view(-1, patches)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return functional.cross_entropy(
        logits, torch.zeros(len(logits), dtype=torch.long), reduction="none"
    )


class CutStep:
    """One CUT/FastCUT training step with given patch ids and flip, plain SGD or Adam optimizers.

    Args:
        generator, discriminator, projection: the modules (``Generator``, ``Discriminator``,
            ``Projection``).
        layers: list of int, the NCE layers as module indices of ``generator.model``.
        lambda_nce: float. nce_idt: bool. flip_equivariance: bool.
        make_optimizer: callable taking parameters, returning a ``torch.optim.Optimizer``.
    """

    def __init__(
        self,
        generator,
        discriminator,
        projection,
        layers,
        lambda_nce,
        nce_idt,
        flip_equivariance,
        make_optimizer,
        lambda_gan=1.0,
        temperature=0.07,
    ):
        self.generator, self.discriminator, self.projection = generator, discriminator, projection
        self.layers = layers
        self.lambda_nce, self.lambda_gan = lambda_nce, lambda_gan
        self.nce_idt, self.flip_equivariance = nce_idt, flip_equivariance
        self.temperature = temperature
        self.optimizer_d = make_optimizer(discriminator.parameters())
        self.optimizer_g = make_optimizer(generator.parameters())
        self.optimizer_f = make_optimizer(projection.parameters())

    def nce(self, source, target, patch_ids, flipped):
        queries = self.generator(target, self.layers)
        if flipped:
            queries = [torch.flip(q, [3]) for q in queries]
        keys = self.generator(source, self.layers)
        keys = self.projection(keys, patch_ids)
        queries = self.projection(queries, patch_ids)
        total = 0.0
        for q, k in zip(queries, keys):
            total = (
                total + (patch_nce(q, k, len(source), self.temperature) * self.lambda_nce).mean()
            )
        return total / len(self.layers)

    def step(self, real_a, real_b, patch_ids, identity_patch_ids, flipped):
        """Runs one step; returns the loss terms as floats."""
        real = torch.cat([real_a, real_b]) if self.nce_idt else real_a
        if self.flip_equivariance and flipped:
            real = torch.flip(real, [3])
        flipped = self.flip_equivariance and flipped
        fake = self.generator(real)
        fake_b = fake[: len(real_a)]

        for p in self.discriminator.parameters():
            p.requires_grad_(True)
        self.optimizer_d.zero_grad()
        pred_real = self.discriminator(real_b)
        d_real = functional.mse_loss(pred_real, torch.ones_like(pred_real))
        pred_fake = self.discriminator(fake_b.detach())
        d_fake = functional.mse_loss(pred_fake, torch.zeros_like(pred_fake))
        d_loss = 0.5 * (d_fake + d_real)
        d_loss.backward()
        self.optimizer_d.step()

        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        self.optimizer_g.zero_grad()
        self.optimizer_f.zero_grad()
        pred = self.discriminator(fake_b)
        adv = functional.mse_loss(pred, torch.ones_like(pred)) * self.lambda_gan
        nce = self.nce(real_a, fake_b, patch_ids, flipped)
        terms = {"d_loss": d_loss, "d_real": d_real, "d_fake": d_fake, "adv": adv, "nce": nce}
        if self.nce_idt:
            idt_b = fake[len(real_a) :]
            terms["nce_y"] = self.nce(real_b, idt_b, identity_patch_ids, flipped)
            g_loss = adv + 0.5 * (nce + terms["nce_y"])
        else:
            g_loss = adv + nce
        terms["g_loss"] = g_loss
        g_loss.backward()
        self.optimizer_g.step()
        self.optimizer_f.step()
        return {name: float(value.detach()) for name, value in terms.items()}


def nhwc(tensor):
    """A torch NCHW tensor as a NumPy NHWC array."""
    return tensor.detach().permute(0, 2, 3, 1).numpy()


def nchw(array):
    """A NumPy NHWC array as a torch NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, np.float32))).permute(0, 3, 1, 2)


def copy_discriminator(reference, ours):
    """Copies a ``Discriminator``'s weights into our PatchGAN, convolution by convolution in order."""
    import keras

    convs = [m for m in reference.model if isinstance(m, nn.Conv2d)]
    layers = [layer for layer in ours.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == len(layers)
    for conv, layer in zip(convs, layers):
        layer.kernel.assign(conv.weight.detach().permute(2, 3, 1, 0).numpy())
        layer.bias.assign(conv.bias.detach().numpy())
