#!/usr/bin/env python
"""Why IQL's seeds play identical episodes on the Procgen coinrun set (issue 29, item 4c).

Loads each offline run's final model the way ``heldout eval`` does (``load_trained_model``) and measures
its policy on frames drawn from the dataset (the same frames for every run, from ``--seed``):

* the greedy action's histogram, the share of frames on its most frequent action, the mean entropy of
  pi, the spread of the logits across frames (per action, the std over frames; averaged over actions)
  against the spread across actions (per frame, max - min logit; averaged over frames);
* how much pi depends on the frame: the mean KL(pi(.|s) || mean_s pi), and the NLL of the frames'
  dataset actions next to the NLL of the dataset's action histogram (a policy that ignores the frame);
* the dataset's own action histogram (every step of every episode);
* for IQL, on one minibatch of those frames: u = min(Q1_target, Q2_target)(s, a) - V(s) and the actor's
  weights min(exp(beta u), 100): their spread, the share clipped at 100 and the effective sample size
  (sum w)^2 / (n sum w^2) (1: all equal; 1/n: one sample carries all);
* for IQL, the distance between the seeds' actor weights (so the seed reaches the network).

Usage: python benchmarks/offline_iql_diagnosis.py DATASET OUT_JSON RUN [RUN ...] [--frames N] [--seed S]
  e.g. python benchmarks/offline_iql_diagnosis.py data/offline-procgen-expert \
      benchmarks/results/offline_procgen/iql_diagnosis.json runs/offline-procgen-rl/coinrun/iql/seed* \
      runs/offline-procgen/coinrun/bc/seed*
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from heldout.agents.offline.iql import advantage_weight
from heldout.protocol.checkpoint import load_trained_model
from heldout.protocol.dataset import open_dataset
from heldout.protocol.run_folder import read_config, write_json


def draw_frames(path: str, frames: int, seed: int) -> dict[str, np.ndarray]:
    """``frames`` transitions drawn uniformly without replacement from the dataset, and every action."""
    dataset = open_dataset(path)
    lengths = dataset.lengths
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(int(lengths.sum()), size=frames, replace=False))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    episode = np.searchsorted(starts, picks, side="right") - 1
    obs, action, all_actions = [], [], []
    for e, ep in enumerate(dataset.read_episodes(range(len(lengths)), keys=("observations", "actions"))):
        all_actions.append(ep["actions"])
        for t in picks[episode == e] - starts[e]:
            obs.append(ep["observations"][t])
            action.append(ep["actions"][t])
    return {
        "obs": np.stack(obs),
        "action": np.asarray(action, dtype=np.int64),
        "all_actions": np.concatenate(all_actions).astype(np.int64),
        "n_actions": int(dataset.action_space.n),
    }


def histogram(actions: np.ndarray, n: int) -> list[float]:
    """Share of each action (rounded to 4 decimals)."""
    return [round(float(x), 4) for x in np.bincount(actions, minlength=n) / max(len(actions), 1)]


def actor_logits(agent, obs: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """The logits of the run's policy (BC: ``policy``; IQL: ``actor``; BCQ: the imitation head)."""
    nets = agent.networks
    with torch.no_grad():
        if "actor" in nets:
            net = nets["actor"]
            return torch.cat([net(obs[i : i + chunk]) for i in range(0, len(obs), chunk)])
        return torch.cat([nets["policy"](obs[i : i + chunk]) for i in range(0, len(obs), chunk)])


def policy_figures(logits: torch.Tensor, action: torch.Tensor, marginal: np.ndarray) -> dict:
    """Greedy histogram, modal share, entropy, logit spreads of ``logits`` (frames x actions), and how
    much pi depends on the frame: the mean KL(pi(.|s) || mean_s pi) (nats; 0: one distribution for
    every frame) and the NLL of the frames' dataset actions next to that of the dataset's ``marginal``."""
    n = len(marginal)
    greedy = logits.argmax(dim=1).numpy()
    hist = np.bincount(greedy, minlength=n)
    logp = torch.log_softmax(logits.double(), dim=1)
    entropy = -(logp.exp() * logp).sum(dim=1)
    mean_pi = logp.exp().mean(dim=0)
    kl = (logp.exp() * (logp - mean_pi.log())).sum(dim=1)
    log_marginal = torch.as_tensor(np.log(marginal))
    return {
        "nll": round(float(-logp.gather(1, action[:, None]).mean()), 4),
        "marginal_nll": round(float(-log_marginal[action].mean()), 4),
        "kl_to_mean_pi": round(float(kl.mean()), 5),
        "greedy_histogram": histogram(greedy, n),
        "greedy_mode": int(hist.argmax()),
        "greedy_mode_share": round(float(hist.max() / len(greedy)), 4),
        "greedy_distinct": int((hist > 0).sum()),
        "entropy_mean": round(float(entropy.mean()), 4),
        "entropy_max": round(float(np.log(n)), 4),
        "logit_std_across_frames": round(float(logits.std(dim=0).mean()), 5),
        "logit_range_across_actions": round(float((logits.max(1).values - logits.min(1).values).mean()), 5),
        "pi_mean": [round(float(x), 4) for x in mean_pi],
    }


def iql_weights(agent, obs: torch.Tensor, action: torch.Tensor) -> dict:
    """u and the actor weights min(exp(beta u), 100) on one batch, as the actor loss sees them."""
    nets, a = agent.networks, action[:, None]
    with torch.no_grad():
        q = torch.min(nets["q1_target"](obs).gather(1, a), nets["q2_target"](obs).gather(1, a)).squeeze(1)
        u = q - nets["v"](obs).squeeze(1)
    w = advantage_weight(u, agent.kwargs["beta"])
    share = w / w.sum()
    return {
        "batch": len(u),
        "beta": agent.kwargs["beta"],
        "u_mean": round(float(u.mean()), 5),
        "u_std": round(float(u.std()), 5),
        "u_min": round(float(u.min()), 5),
        "u_max": round(float(u.max()), 5),
        "weight_mean": round(float(w.mean()), 5),
        "weight_std": round(float(w.std()), 5),
        "weight_min": round(float(w.min()), 5),
        "weight_max": round(float(w.max()), 5),
        "clipped_share": round(float((w >= 100.0).float().mean()), 5),
        "ess_share": round(float(w.sum() ** 2 / (len(w) * (w**2).sum())), 5),
        "top_1pct_weight_share": round(
            float(share.sort(descending=True).values[: max(1, len(w) // 100)].sum()), 5
        ),
        "q_mean": round(float(q.mean()), 5),
        "q_std": round(float(q.std()), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=512, help="frames of the IQL weight batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = draw_frames(args.dataset, args.frames, args.seed)
    n = data["n_actions"]
    marginal = np.bincount(data["all_actions"], minlength=n) / len(data["all_actions"])
    obs = torch.as_tensor(data["obs"])
    action = torch.as_tensor(data["action"])
    out: dict = {
        "dataset": args.dataset,
        "frames": len(obs),
        "seed": args.seed,
        "dataset_histogram": histogram(data["all_actions"], n),
        "frames_histogram": histogram(data["action"], n),
        "runs": {},
    }
    actors: dict[str, list[torch.Tensor]] = {}
    for run in args.runs:
        config = read_config(Path(run) / "config.yaml")
        agent = load_trained_model(config, run, device="cpu")
        agent.set_training(False)
        record = {"agent": config.agent, "seed": config.seed, "step": agent.step}
        record.update(policy_figures(actor_logits(agent, obs), action, marginal))
        if config.agent == "iql":
            record["weights"] = iql_weights(agent, obs[: args.batch], action[: args.batch])
            actors.setdefault("iql", []).append(
                torch.cat([p.detach().flatten() for p in agent.networks["actor"].parameters()])
            )
        out["runs"][run] = record
        print(run, json.dumps({k: v for k, v in record.items() if k not in ("pi_mean",)}))
    if len(actors.get("iql", [])) > 1:
        flat = actors["iql"]
        out["iql_actor_param_distance"] = [
            [round(float((a - b).norm() / a.norm()), 5) for b in flat] for a in flat
        ]
    write_json(args.out, out)


if __name__ == "__main__":
    main()
