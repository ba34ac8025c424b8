"""PyTorch reference of GANimation's networks and training steps, for side-by-side speed figures.

Benchmark-only (PyTorch is not a dependency of ganimation-tl: ``pip install torch==2.13.0``).
Architecture facts from the official code (``albertpumarola/GANimation``, GPL; written anew here
from the facts in ``../shared/docs/ganimation.md`` and ``toolchain.md`` section 2.1):

* generator: 7x7 conv (3 + 17 -> 64), 2 stride-2 4x4 convs, 6 residual blocks (3x3 conv, IN, ReLU,
  3x3 conv, IN), 2 stride-2 4x4 transposed convs, heads 7x7 -> 3 (tanh colour mask C) and
  7x7 -> 1 (sigmoid attention mask A); convs feeding instance norm have no bias; IN affine, eps 1e-5.
* critic: 6 stride-2 4x4 convs with bias and LeakyReLU(0.01) (64 .. 2048 channels); heads 3x3 -> 1
  (critic map) and (S/64)x(S/64) VALID -> 17 AUs, both without bias.
* steps as the official ``optimize_parameters``: critic step = G forward without gradient, WGAN
  terms on real and fake, AU MSE on real, WGAN-GP on interpolates via ``autograd.grad(create_graph
  =True)``, Adam; generator step = G(x|y_f) -> D, G(G(x|y_f)|y_o) cycle L1, attention mean + TV
  on both masks, Adam with the critic frozen. Loss weights as the project's defaults.

Parameter counts equal the TensorLayer port's (G 8,471,296; D 44,860,352 at 128 px), checked by
``bench/bench_speed.py``.
"""
from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """NCHW images in [-1, 1] + AUs [B, 17] -> (colour mask [B,3,H,W] in [-1,1], attention [B,1,H,W])."""

    def __init__(self, conv_dim: int = 64, num_aus: int = 17, repeat_num: int = 6):
        super().__init__()
        layers = [nn.Conv2d(3 + num_aus, conv_dim, 7, 1, 3, bias=False), nn.InstanceNorm2d(conv_dim, affine=True),
                  nn.ReLU(inplace=True)]
        c = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(c * 2, affine=True),
                       nn.ReLU(inplace=True)]
            c *= 2
        layers += [ResidualBlock(c) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.InstanceNorm2d(c // 2, affine=True),
                       nn.ReLU(inplace=True)]
            c //= 2
        self.body = nn.Sequential(*layers)
        self.colour = nn.Sequential(nn.Conv2d(c, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention = nn.Sequential(nn.Conv2d(c, 1, 7, 1, 3, bias=False), nn.Sigmoid())

    def forward(self, x, aus):
        a = aus[:, :, None, None].expand(-1, -1, x.size(2), x.size(3))
        features = self.body(torch.cat([x, a], dim=1))
        return self.colour(features), self.attention(features)


class Critic(nn.Module):
    """NCHW images -> (critic map [B,1,S/64,S/64], AUs [B,17])."""

    def __init__(self, image_size: int = 128, conv_dim: int = 64, num_aus: int = 17, repeat_num: int = 6):
        super().__init__()
        layers = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        c = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            c *= 2
        self.body = nn.Sequential(*layers)
        k = image_size // 2 ** repeat_num
        self.map = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
        self.aus = nn.Conv2d(c, num_aus, k, bias=False)

    def forward(self, x):
        h = self.body(x)
        return self.map(h), self.aus(h).view(x.size(0), -1)


def compose(x, colour, attention):
    return attention * x + (1 - attention) * colour


class Reference:
    """Both networks, Adam(1e-4, 0.5, 0.999) each, and the official critic/generator steps."""

    def __init__(self, image_size: int = 128, lambda_au: float = 160.0, lambda_gp: float = 10.0,
                 lambda_cycle: float = 10.0, lambda_attention: float = 0.1, lambda_tv: float = 1e-5):
        torch.manual_seed(0)
        self.G, self.D = Generator(), Critic(image_size)
        self.opt_g = torch.optim.Adam(self.G.parameters(), 1e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), 1e-4, betas=(0.5, 0.999))
        self.l = dict(au=lambda_au, gp=lambda_gp, cyc=lambda_cycle, att=lambda_attention, tv=lambda_tv)

    def edit(self, x, aus):
        with torch.inference_mode():
            self.G.eval()
            c, a = self.G(x, aus)
            return compose(x, c, a)

    def critic_step(self, x, aus, target):
        self.G.train()
        with torch.no_grad():
            c, a = self.G(x, target)
            fake = compose(x, c, a)
        real_map, real_aus = self.D(x)
        fake_map, _ = self.D(fake)
        loss = -real_map.mean() + fake_map.mean() + self.l["au"] * ((real_aus - aus) ** 2).mean()
        alpha = torch.rand(x.size(0), 1, 1, 1)
        x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
        out, _ = self.D(x_hat)
        grad = torch.autograd.grad(out.sum(), x_hat, create_graph=True)[0]
        gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        loss = loss + self.l["gp"] * gp
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return float(loss)

    def generator_step(self, x, aus, target):
        self.G.train()
        for p in self.D.parameters():
            p.requires_grad_(False)
        c, a = self.G(x, target)
        fake = compose(x, c, a)
        fake_map, fake_aus = self.D(fake)
        c2, a2 = self.G(fake, aus)
        rec = compose(fake, c2, a2)

        def tv(m):
            return (m[:, :, 1:, :] - m[:, :, :-1, :]).abs().sum() + (m[:, :, :, 1:] - m[:, :, :, :-1]).abs().sum()

        loss = (-fake_map.mean() + self.l["au"] * ((fake_aus - target) ** 2).mean()
                + self.l["cyc"] * (rec - x).abs().mean() + self.l["att"] * (a.mean() + a2.mean())
                + self.l["tv"] * (tv(a) + tv(a2)))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        for p in self.D.parameters():
            p.requires_grad_(True)
        return float(loss)

    def iteration(self, x, aus, target, step: int, n_critic: int = 5):
        """One official iteration: a critic step, plus a generator step when ``step % n_critic == 0``."""
        self.critic_step(x, aus, target)
        if step % n_critic == 0:
            self.generator_step(x, aus, target)
