"""Neural network trunks for image observations, as stable-baselines3 features extractors.

The IMPALA-CNN here is the network of the Procgen reference agents (openai/baselines
``build_impala_cnn(depths=[16, 32, 32])``, cleanrl ``ppo_procgen.py``); see ALGORITHMS.md section 1.2.

References:
    Espeholt et al. 2018, "IMPALA: Scalable Distributed Deep-RL with Importance Weighted
    Actor-Learner Architectures", ICML. https://arxiv.org/abs/1802.01561
    Cobbe et al. 2020, "Leveraging Procedural Generation to Benchmark Reinforcement Learning",
    ICML. https://arxiv.org/abs/1912.01588
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class ResidualBlock(nn.Module):
    """IMPALA residual block: ``x + conv(relu(conv(relu(x))))``.

    Every ReLU is its own non-inplace ``nn.ReLU`` module, so attribution methods that hook ReLU
    modules (guided backprop) see all of them.

    Args:
        channels: Number of input and output channels.
        relu_skip: If True, the skip connection adds ``relu(x)`` instead of ``x``. This reproduces
            the auto-drac / level-replay implementation, whose in-place ``nn.ReLU`` overwrote the
            tensor the skip connection aliases (Raileanu et al. 2021 code; ALGORITHMS.md 1.6).
            False (default) is the baselines / cleanrl form (Espeholt et al. 2018).
    """

    def __init__(self, channels: int, relu_skip: bool = False) -> None:
        super().__init__()
        self.relu_skip = relu_skip
        self.relu0 = nn.ReLU()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu0(x)
        y = self.conv1(self.relu1(self.conv0(h)))
        return (h if self.relu_skip else x) + y


class ConvSequence(nn.Module):
    """IMPALA conv sequence: conv 3x3 'same' -> max-pool 3, stride 2 -> two residual blocks.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of every conv in the sequence.
        relu_skip: Passed to both :class:`ResidualBlock` s.

    Note:
        PyTorch ``MaxPool2d(3, 2, padding=1)`` pads one pixel on both sides while TF "SAME" pads
        (0, 1): same output size, slightly different alignment. This only matters when porting TF
        weights (ALGORITHMS.md 1.6).
    """

    def __init__(self, in_channels: int, out_channels: int, relu_skip: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.res0 = ResidualBlock(out_channels, relu_skip=relu_skip)
        self.res1 = ResidualBlock(out_channels, relu_skip=relu_skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res1(self.res0(self.pool(self.conv(x))))


class ImpalaCNN(BaseFeaturesExtractor):
    """The IMPALA-CNN ("deep" variant) of Espeholt et al. 2018, as used by Cobbe et al. 2020.

    ``ConvSequence(16) -> ConvSequence(32) -> ConvSequence(32) -> relu -> flatten -> Linear -> relu``;
    for a 64x64 input the flattened size is 32 * 8 * 8 = 2048. With a linear policy head over 15
    actions and a linear value head (SB3 ``net_arch=[]``) the whole actor-critic has 626,256
    parameters, as in openai/baselines and cleanrl.

    The extractor receives what SB3 gives a features extractor: channel-first float images already
    divided by 255 (``preprocess_obs`` with ``normalize_images=True``). Initialisation is PyTorch's
    default (as cleanrl); the PPO in :mod:`heldout.agents.ppo` initialises the heads.

    Args:
        observation_space: A ``Box`` of shape ``(C, H, W)`` (channel-first, as SB3 passes it after
            ``VecTransposeImage``).
        features_dim: Width of the output embedding (256 in every reference).
        depths: Output channels of the conv sequences.
        relu_skip: If True, residual blocks add ``relu(x)`` on the skip path (the auto-drac /
            level-replay quirk, ALGORITHMS.md 1.6); default False is the baselines / cleanrl form.
        channels_last: Feed the convolutions channels-last input (same maths, same outputs up to
            float rounding; measured 1.5x faster forward+backward and 2.3x faster inference on 2 CPU
            cores, and the layout tensor cores prefer on GPUs).
        final_relu: Apply the ReLU after the final linear layer (the references). False for the
            hyperbolic heads (:mod:`heldout.agents.hyperbolic`), which map the linear output itself to
            the manifold, as Cetin et al. 2023 do (``pre_hyperbolic_relu: false``).

    Raises:
        TypeError: If ``observation_space`` is not a ``gymnasium.spaces.Box``.
        ValueError: If its shape is not 3-dimensional.
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        features_dim: int = 256,
        depths: Sequence[int] = (16, 32, 32),
        relu_skip: bool = False,
        channels_last: bool = True,
        final_relu: bool = True,
    ) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise TypeError(f"ImpalaCNN needs a Box observation space, got {observation_space!r}")
        if len(observation_space.shape) != 3:
            raise ValueError(
                f"ImpalaCNN needs channel-first image observations (C, H, W), "
                f"got shape {observation_space.shape}"
            )
        super().__init__(observation_space, features_dim)
        self.depths = tuple(int(d) for d in depths)
        self.relu_skip = relu_skip
        channels, height, width = observation_space.shape
        sequences = []
        for depth in self.depths:
            sequences.append(ConvSequence(channels, depth, relu_skip=relu_skip))
            channels = depth
            # MaxPool2d(3, stride 2, padding 1): out = floor((n + 2 - 3) / 2) + 1 = ceil(n / 2).
            height, width = (height + 1) // 2, (width + 1) // 2
        self.cnn = nn.Sequential(*sequences)
        self.flatten_relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.n_flatten = channels * height * width
        self.linear = nn.Linear(self.n_flatten, features_dim)
        self.linear_relu = nn.ReLU() if final_relu else nn.Identity()
        # Only the input is made channels-last: the convolutions then run (and return) in that
        # layout, while the weights keep the standard layout, so SB3's orthogonal init, state dicts
        # and checkpoints are unaffected.
        self.channels_last = bool(channels_last)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            observations = observations.contiguous(memory_format=torch.channels_last)
        x = self.cnn(observations)
        x = self.flatten(self.flatten_relu(x))
        return self.linear_relu(self.linear(x))
