"""CycleGAN's training step in PyTorch, with the official release's architecture options, for parity tests.

Zhu et al. 2017 and the official release's behaviour, restated here independently of both the
release and this package:

* Norms (``--norm``): ``InstanceNorm2d`` (affine or not, no running statistics), ``BatchNorm2d``
  (affine, running statistics) or none; a convolution followed by a norm has a bias with an instance
  norm only.
* Discriminators (``--netD``): the PatchGAN, ``Conv 4x4 s2 (ndf), LeakyReLU 0.2``, ``n_layers - 1``
  times ``Conv 4x4 s2, norm, LeakyReLU``, then ``Conv 4x4 s1, norm, LeakyReLU`` and ``Conv 4x4 s1`` to
  one channel, padding 1; the PixelGAN, ``Conv 1x1 (ndf), LeakyReLU, Conv 1x1 (2 ndf), norm,
  LeakyReLU, Conv 1x1 (1)``.
* GAN losses (``--gan_mode``): MSE to 1/0 (lsgan), BCE with logits (vanilla), minus/plus the mean
  logit (wgangp); the gradient penalty at ``α real + (1 - α) fake``, one ``α`` per image:
  ``10 * mean((|∇ D| + 1e-16 per value, L2 over the image) - 1)²``, added to each discriminator's
  ``0.5 * (real + fake)``.
* One step: both generators on the joint objective (adversarial, cycle ``λ = 10``, identity
  ``λ · 0.5``), then both discriminators on the same (detached) translations, no image pool.
"""

import keras
import torch
from torch import nn
from torch.nn import functional

from tests.tools.torch_reference import norm_module


class NLayerDiscriminator(nn.Module):
    """The PatchGAN with the official norm options."""

    def __init__(self, ndf=64, n_layers=3, channels=3, norm="instance", affine=False):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for i in range(1, n_layers):
            out = ndf * min(2**i, 8)
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1, bias=bias)]
            layers += [norm_module(norm, out, affine), nn.LeakyReLU(0.2, True)]
            width = out
        out = ndf * min(2**n_layers, 8)
        layers += [nn.Conv2d(width, out, 4, stride=1, padding=1, bias=bias)]
        layers += [norm_module(norm, out, affine), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(out, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """The 1x1 PixelGAN."""

    def __init__(self, ndf=64, channels=3, norm="instance", affine=False):
        super().__init__()
        bias = norm == "instance"
        self.net = nn.Sequential(
            nn.Conv2d(channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
            norm_module(norm, 2 * ndf, affine),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, 1, bias=bias),
        )

    def forward(self, x):
        return self.net(x)


def gan_loss(gan_mode, prediction, target_is_real):
    if gan_mode == "lsgan":
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        return functional.mse_loss(prediction, target)
    if gan_mode == "vanilla":
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        return functional.binary_cross_entropy_with_logits(prediction, target)
    return -prediction.mean() if target_is_real else prediction.mean()


def gradient_penalty(discriminator, real, fake, alpha, weight=10.0):
    alpha = alpha.view(-1, 1, 1, 1).expand_as(real)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    logits = discriminator(mixed)
    (gradients,) = torch.autograd.grad(
        logits, mixed, torch.ones_like(logits), create_graph=True, retain_graph=True
    )
    gradients = gradients.reshape(len(real), -1)
    return (((gradients + 1e-16).norm(2, dim=1) - 1.0) ** 2).mean() * weight


class CycleGANStep:
    """One CycleGAN step with SGD. ``d_a`` judges domain A, ``d_b`` domain B."""

    def __init__(self, g_ab, g_ba, d_a, d_b, gan_mode, learning_rate, lambda_identity=0.5):
        self.g_ab, self.g_ba, self.d_a, self.d_b = g_ab, g_ba, d_a, d_b
        self.gan_mode = gan_mode
        self.lambda_cycle, self.lambda_identity = 10.0, lambda_identity
        generators = list(g_ab.parameters()) + list(g_ba.parameters())
        self.optimizer_g = torch.optim.SGD(generators, lr=learning_rate)
        discriminators = list(d_a.parameters()) + list(d_b.parameters())
        self.optimizer_d = torch.optim.SGD(discriminators, lr=learning_rate)

    def step(self, real_a, real_b, alpha_a, alpha_b):
        """Runs one step (``alpha_*``: each discriminator's mixing weights); returns the terms."""
        gan, lam = self.gan_mode, self.lambda_cycle
        fake_b = self.g_ab(real_a)
        rec_a = self.g_ba(fake_b)
        fake_a = self.g_ba(real_b)
        rec_b = self.g_ab(fake_a)
        for p in [*self.d_a.parameters(), *self.d_b.parameters()]:
            p.requires_grad_(False)
        self.optimizer_g.zero_grad()
        terms = {}
        if self.lambda_identity > 0:
            weight = lam * self.lambda_identity
            terms["identity_b"] = functional.l1_loss(self.g_ab(real_b), real_b) * weight
            terms["identity_a"] = functional.l1_loss(self.g_ba(real_a), real_a) * weight
        terms["adv_ab"] = gan_loss(gan, self.d_b(fake_b), True)
        terms["adv_ba"] = gan_loss(gan, self.d_a(fake_a), True)
        terms["cycle_aba"] = functional.l1_loss(rec_a, real_a) * lam
        terms["cycle_bab"] = functional.l1_loss(rec_b, real_b) * lam
        sum(terms.values()).backward()
        self.optimizer_g.step()

        for p in [*self.d_a.parameters(), *self.d_b.parameters()]:
            p.requires_grad_(True)
        self.optimizer_d.zero_grad()
        for name, d, real, fake, alpha in (
            ("d_b", self.d_b, real_b, fake_b, alpha_b),
            ("d_a", self.d_a, real_a, fake_a, alpha_a),
        ):
            fake = fake.detach()
            loss = 0.5 * (gan_loss(gan, d(real), True) + gan_loss(gan, d(fake), False))
            if gan == "wgangp":
                loss = loss + gradient_penalty(d, real, fake, alpha)
            loss.backward()
            terms[name] = loss
        self.optimizer_d.step()
        return {name: float(value.detach()) for name, value in terms.items()}


def copy_weights(module, model):
    """Copies a PyTorch module's convolutions and norms into a Keras model's, in the order both meet them.

    Batch norms take their running statistics too.
    """
    ours = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(
            layer,
            (
                keras.layers.Conv2D,
                keras.layers.Conv2DTranspose,
                keras.layers.GroupNormalization,
                keras.layers.BatchNormalization,
            ),
        )
        and layer.weights
    ]
    theirs = [
        m
        for m in module.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d))
        and (list(m.parameters()) or list(m.buffers()))
    ]
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for layer, torch_module in zip(ours, theirs):
        if isinstance(torch_module, (nn.Conv2d, nn.ConvTranspose2d)):
            values = [torch_module.weight.detach().permute(2, 3, 1, 0)]
            values += [] if torch_module.bias is None else [torch_module.bias.detach()]
        else:
            values = [torch_module.weight.detach(), torch_module.bias.detach()]
            if isinstance(torch_module, nn.BatchNorm2d):
                values += [torch_module.running_mean, torch_module.running_var]
        assert len(values) == len(layer.weights), layer.name
        for weight, value in zip(layer.weights, values):
            weight.assign(value.numpy())
