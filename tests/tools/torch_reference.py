"""The reference ResNet generator in PyTorch, written from the CycleGAN paper for parity tests.

Zhu et al. 2017, appendix 7.2: ``c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3`` with reflection
padding, instance normalization and ReLU; ``R`` is a residual block of two 3x3 convolutions, ``u`` a
fractional-strided 3x3 convolution with stride 1/2. The modules are laid out as in the official PyTorch
release (one ``nn.Sequential`` called ``model``, blocks holding ``conv_block``), so the state-dict keys are
the ones its ``latest_net_G.pth`` files carry. InstanceNorm has no affine parameters and all convolutions
have biases, as in the release's default ``--norm instance``.
"""

import torch
from torch import nn


def norm_module(norm, channels, affine=False):
    """The official ``get_norm_layer(norm)(channels)``: instance (affine or not), batch or identity."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """``x + [pad, conv 3x3, norm, ReLU, (dropout), pad, conv 3x3, norm](x)``.

    ``block_name`` is the attribute holding the sequence: ``conv_block`` in the official release,
    ``block`` in many re-implementations.
    """

    def __init__(
        self, channels, norm="instance", affine=False, dropout=False, bias=True, block_name=None
    ):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_module(norm, channels, affine),
            nn.ReLU(True),
        ]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_module(norm, channels, affine),
        ]
        self.block_name = block_name or "conv_block"
        setattr(self, self.block_name, nn.Sequential(*layers))

    def forward(self, x):
        return x + getattr(self, self.block_name)(x)


class ResnetGenerator(nn.Module):
    """The paper's ResNet generator; NCHW images in [-1, 1] to the same shape.

    ``norm`` (``instance``, ``batch``, ``none``), ``affine``, ``dropout``, the channels in and out
    and the biases are the official options: the convolutions followed by a norm have biases with
    an instance norm only (a batch norm's shift replaces them, and ``none`` follows the same rule),
    unless ``bias`` says otherwise (re-implementations keep them).
    """

    def __init__(
        self,
        ngf=64,
        n_blocks=9,
        channels=3,
        norm="instance",
        affine=False,
        dropout=False,
        output_channels=None,
        bias=None,
        block_name=None,
    ):
        super().__init__()
        bias = norm == "instance" if bias is None else bias
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7, bias=bias),
            norm_module(norm, ngf, affine),
            nn.ReLU(True),
        ]
        for i in range(2):  # d128, d256
            width = ngf * 2**i
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias),
                norm_module(norm, width * 2, affine),
                nn.ReLU(True),
            ]
        layers += [
            ResidualBlock(ngf * 4, norm, affine, dropout, bias, block_name) for _ in range(n_blocks)
        ]
        for i in range(2):  # u128, u64
            width = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(
                    width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias
                ),
                norm_module(norm, width // 2, affine),
                nn.ReLU(True),
            ]
        out = channels if output_channels is None else output_channels
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetBlock(nn.Module):
    """One level of the official U-Net: ``cat(x, up(sub(down(x))))``, or the outermost without ``cat``.

    Its down path starts with an in-place LeakyReLU, as the official one does: the ``x`` kept for the
    concatenation is then the activated tensor.
    """

    def __init__(
        self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, **options
    ):
        super().__init__()
        norm, affine, dropout = options["norm"], options["affine"], options.get("dropout", False)
        bias = norm == "instance"
        self.outermost = outermost
        down = nn.Conv2d(input_nc or outer, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(2 * inner, outer, 4, stride=2, padding=1)
            layers = [down, sub, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up]
            layers += [norm_module(norm, outer, affine)]
        else:
            up = nn.ConvTranspose2d(2 * inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, norm_module(norm, inner, affine), sub]
            layers += [nn.ReLU(True), up, norm_module(norm, outer, affine)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The official ``UnetGenerator(input_nc, output_nc, num_downs, ngf, norm, use_dropout)``."""

    def __init__(
        self,
        ngf=64,
        num_downs=8,
        channels=3,
        output_channels=None,
        norm="batch",
        affine=False,
        dropout=False,
    ):
        super().__init__()
        options = {"norm": norm, "affine": affine}
        block = UnetBlock(8 * ngf, 8 * ngf, innermost=True, **options)
        for _ in range(num_downs - 5):
            block = UnetBlock(8 * ngf, 8 * ngf, sub=block, dropout=dropout, **options)
        for width in (4 * ngf, 2 * ngf, ngf):
            block = UnetBlock(width, 2 * width, sub=block, **options)
        out = channels if output_channels is None else output_channels
        self.model = UnetBlock(out, ngf, channels, block, outermost=True, **options)

    def forward(self, x):
        return self.model(x)


def randomize(module, seed=0, scale=0.02):
    """N(0, ``scale``) weights and biases; norm scales near 1, running variances in [0.5, 2].

    Non-zero biases and running means make a tensor that lands in the wrong place visible at the
    output.
    """
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=rng) * scale
            is_norm_scale = parameter.ndim == 1 and name.endswith("weight")
            parameter.copy_(1.0 + 10 * noise if is_norm_scale else noise)
        for name, buffer in module.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=rng) * 0.1)
            elif name.endswith("running_var"):
                buffer.copy_(0.5 + 1.5 * torch.rand(buffer.shape, generator=rng))
    return module.eval()


def random_reference_generator(ngf=64, n_blocks=9, seed=0, scale=0.02, **options):
    """A ``ResnetGenerator`` in eval mode with N(0, 0.02) weights and biases (the paper's init scale).

    Non-zero biases make a bias that lands in the wrong place visible at the output. A larger
    ``scale`` keeps the output of a tiny generator without instance norms away from 0.
    """
    return randomize(ResnetGenerator(ngf, n_blocks, **options), seed, scale)
