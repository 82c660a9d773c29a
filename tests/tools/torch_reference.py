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


class ResidualBlock(nn.Module):
    """``x + [pad, conv 3x3, IN, ReLU, pad, conv 3x3, IN](x)``."""

    def __init__(self, channels):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The paper's ResNet generator; NCHW images in [-1, 1] to the same shape."""

    def __init__(self, ngf=64, n_blocks=9, channels=3):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # d128, d256
            width = ngf * 2**i
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(width * 2),
                nn.ReLU(True),
            ]
        layers += [ResidualBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):  # u128, u64
            width = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(width // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def random_reference_generator(ngf=64, n_blocks=9, seed=0):
    """A ``ResnetGenerator`` in eval mode with N(0, 0.02) weights and biases (the paper's init scale).

    Non-zero biases make a bias that lands in the wrong place visible at the output.
    """
    generator = ResnetGenerator(ngf, n_blocks)
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=rng) * 0.02)
    return generator.eval()
