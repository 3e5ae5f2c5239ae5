"""The project's own blocks: plain PyTorch modules that keep the channel count and the resolution."""

from torch import nn


class ConvBlock(nn.Module):
    """3x3 convolution, batch norm, ReLU, with a residual connection."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )

    def forward(self, x):
        return x + self.body(x)


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al., 2018) after a depthwise 3x3 convolution."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        y = self.depthwise(x)
        return x + y * self.gate(y)


class Bottleneck(nn.Module):
    """1x1 expand, 3x3, 1x1 project, residual (ResNet's bottleneck inverted)."""

    def __init__(self, channels: int, expansion: int = 2):
        super().__init__()
        hidden = channels * expansion
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)
