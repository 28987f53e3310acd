"""A cleanrl-style PPO loop on heldout's native Procgen vector env (docs/gymnasium-vector.md).

One file, no heldout agent: the env is ``gymnasium.make_vec("heldout/coinrun-v0", ...)`` (one native
procgen core; heldout's level lists and ``info["level_seed"]``), the rest is a plain PPO update in
torch as cleanrl's ``ppo_procgen.py`` writes it (Huang et al. 2022, "CleanRL"). Train on levels
0-199, then score the agent on held-out levels, the zero-shot test::

    python docs/examples/cleanrl_style_ppo.py --total-timesteps 200000

The default (65,536 steps) takes a few minutes on 2 idle CPU cores and learns little; the reference
budget is 25M steps on a GPU.
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np
import torch
from torch import nn

import heldout  # noqa: F401  (registers heldout/<game>-v0 and its native vector entry point)


class Agent(nn.Module):
    """A small CNN actor-critic on 64x64 RGB frames (channel-last uint8 in, as the env gives them)."""

    def __init__(self, actions: int = 15) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 8, stride=4), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 6 * 6, 256), nn.ReLU(),
        )  # fmt: skip
        self.pi = nn.Linear(256, actions)
        self.v = nn.Linear(256, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.distributions.Categorical, torch.Tensor]:
        h = self.body(obs.permute(0, 3, 1, 2).float() / 255.0)
        return torch.distributions.Categorical(logits=self.pi(h)), self.v(h).squeeze(-1)


def train(
    game: str = "coinrun",
    total_timesteps: int = 65_536,
    num_envs: int = 32,
    num_steps: int = 64,
    epochs: int = 3,
    minibatches: int = 8,
    gamma: float = 0.999,
    lam: float = 0.95,
    clip: float = 0.2,
    lr: float = 5e-4,
    seed: int = 0,
) -> dict:
    """Trains on levels 0-199; returns the agent, the levels each finished episode was played on,
    their returns, and the losses of each update."""
    torch.manual_seed(seed)
    envs = gymnasium.wrappers.vector.RecordEpisodeStatistics(
        gymnasium.make_vec(f"heldout/{game}-v0", num_envs=num_envs, levels="0:200")
    )
    agent = Agent()
    optimizer = torch.optim.Adam(agent.parameters(), lr=lr, eps=1e-5)
    obs_buf = torch.zeros((num_steps, num_envs, 64, 64, 3), dtype=torch.uint8)
    act_buf = torch.zeros((num_steps, num_envs), dtype=torch.long)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros((num_steps, num_envs)) for _ in range(4))
    out: dict = {"agent": agent, "levels": [], "returns": [], "losses": []}

    obs, _ = envs.reset(seed=seed)
    next_obs = torch.as_tensor(obs)
    next_done = torch.zeros(num_envs)
    for _ in range(total_timesteps // (num_envs * num_steps)):
        for t in range(num_steps):
            obs_buf[t], done_buf[t] = next_obs, next_done
            with torch.no_grad():
                dist, value = agent(next_obs)
                action = dist.sample()
            act_buf[t], logp_buf[t], val_buf[t] = action, dist.log_prob(action), value
            obs, reward, term, trunc, info = envs.step(action.numpy())
            rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32)
            next_obs, next_done = torch.as_tensor(obs), torch.as_tensor(term | trunc, dtype=torch.float32)
            if "_episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    out["levels"].append(int(info["level_seed"][i]))
                    out["returns"].append(float(info["episode"]["r"][i]))
        # GAE (Schulman et al. 2016), one backward pass over time, vectorized over envs
        with torch.no_grad():
            next_value = agent(next_obs)[1]
            adv = torch.zeros_like(rew_buf)
            last = torch.zeros(num_envs)
            for t in reversed(range(num_steps)):
                not_done = 1.0 - (next_done if t == num_steps - 1 else done_buf[t + 1])
                nv = next_value if t == num_steps - 1 else val_buf[t + 1]
                delta = rew_buf[t] + gamma * nv * not_done - val_buf[t]
                last = delta + gamma * lam * not_done * last
                adv[t] = last
            returns = adv + val_buf
        b_obs, b_act = obs_buf.flatten(0, 1), act_buf.flatten()
        b_logp, b_adv, b_ret = logp_buf.flatten(), adv.flatten(), returns.flatten()
        size = num_envs * num_steps
        for _ in range(epochs):
            for idx in torch.randperm(size).chunk(minibatches):
                dist, value = agent(b_obs[idx])
                ratio = (dist.log_prob(b_act[idx]) - b_logp[idx]).exp()
                a = (b_adv[idx] - b_adv[idx].mean()) / (b_adv[idx].std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
                loss = pg + 0.5 * ((value - b_ret[idx]) ** 2).mean() - 0.01 * dist.entropy().mean()
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                optimizer.step()
                out["losses"].append(float(loss.detach()))
    envs.close()
    return out


def test_return(agent: Agent, game: str = "coinrun", episodes: int = 64, num_envs: int = 16) -> float:
    """Mean return over ``episodes`` held-out levels (seeds from 100,000,000, never trained on)."""
    envs = gymnasium.make_vec(f"heldout/{game}-v0", num_envs=num_envs, levels="100000000:100001000")
    envs = gymnasium.wrappers.vector.RecordEpisodeStatistics(envs)
    obs, _ = envs.reset(seed=1)
    returns: list[float] = []
    while len(returns) < episodes:
        with torch.no_grad():
            action = agent(torch.as_tensor(obs))[0].sample()
        obs, _, _, _, info = envs.step(action.numpy())
        if "_episode" in info:
            returns += [float(r) for r in info["episode"]["r"][info["_episode"]]]
    envs.close()
    return float(np.mean(returns[:episodes]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="coinrun")
    parser.add_argument("--total-timesteps", type=int, default=65_536)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = train(args.game, args.total_timesteps, seed=args.seed)
    seconds = time.perf_counter() - t0
    train_mean = float(np.mean(out["returns"][-100:])) if out["returns"] else float("nan")
    print(f"{args.total_timesteps} steps in {seconds:.0f} s ({args.total_timesteps / seconds:.0f} steps/s)")
    print(f"train return (last 100 episodes): {train_mean:.2f}")
    print(f"test return (64 held-out levels): {test_return(out['agent'], args.game):.2f}")


if __name__ == "__main__":
    main()
