"""Decision Transformer (Chen et al. 2021), return-conditioned, on heldout's trunks.

A causal transformer over the tokens (R_1, s_1, a_1, ..., R_K, s_K, a_K) of a window of K steps, where
R_t is the return-to-go (the undiscounted sum of the episode's rewards from step t on). The action
logits are read at the state tokens, so a_t is predicted from R_1..R_t, s_1..s_t and a_1..a_{t-1}.
Embeddings as DT-Atari and gen_dgrl: state = tanh(Linear(trunk(s))), RTG = tanh(Linear(R)),
action = tanh(Embedding) with an extra padding token; position = a learned embedding of the window's
first timestep plus a learned in-window position. Training: cross-entropy over the steps the loader's
``mask`` marks real, AdamW (betas 0.9/0.95, weight decay 0.1 on Linear/Conv/attention weights only),
gradients clipped at 1.0, LR warmed up linearly over ``warmup_tokens`` and decayed by a cosine to 10 %
at ``final_tokens`` (tokens = updates x batch_size x K, as gen_dgrl counts them).

Acting keeps the last K steps of every env slot in ``state`` (a :class:`DTContext`): each slot starts
at the target return (``target_return``, or ``return_multiplier`` x the largest return-to-go seen in
training, gen_dgrl's 5 x the data's best episode return), :meth:`DecisionTransformer.observe` lowers it
by each reward, and the action is sampled from the logits at the newest state token (argmax when
``deterministic``).

gen_dgrl's released DT is *not* return-conditioned (ALGORITHMS-offline.md trap 0.1); this one is.

References:
    Chen et al. 2021, "Decision Transformer". https://arxiv.org/abs/2106.01345 (code:
    kzl/decision-transformer ``atari/mingpt``); Mediratta et al. 2024 (gen_dgrl ``offline/agents/dt.py``,
    ``utils/gpt_arch.py``); CORL ``algorithms/offline/dt.py``. docs/offline-algorithms.md lists the differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heldout.agents.offline.base import COUNT, NON_NEGATIVE, POSITIVE, OfflineAgent, Range, make_encoder


def returns_to_go(rewards: np.ndarray) -> np.ndarray:
    """The undiscounted suffix sums ``R_t = sum_{t' >= t} r_t'`` of one episode's rewards."""
    return np.cumsum(np.asarray(rewards, dtype=np.float64)[::-1])[::-1].astype(np.float32)


class DTModel(nn.Module):
    """The embeddings, the causal transformer (``nn.TransformerEncoder``, pre-LayerNorm as minGPT) and the
    action head.

    Args:
        observation_space: The env's observation space (its trunk: :func:`make_encoder`).
        n_actions: Number of actions; the embedding has one more entry, the padding token.
        context_length: K, the steps per window (3K tokens).
        n_layer, n_head, n_embd, dropout: The GPT's size (gen_dgrl: 6, 8, 128, 0.1).
        max_timestep: Size of the timestep embedding; later timesteps use the last entry.
    """

    def __init__(
        self,
        observation_space: Any,
        n_actions: int,
        context_length: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float,
        max_timestep: int,
    ) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.max_timestep = max_timestep
        self.encoder = make_encoder(observation_space)
        self.state_embedding = nn.Sequential(nn.Linear(self.encoder.features_dim, n_embd), nn.Tanh())
        self.rtg_embedding = nn.Sequential(nn.Linear(1, n_embd), nn.Tanh())
        self.action_embedding = nn.Sequential(nn.Embedding(n_actions + 1, n_embd), nn.Tanh())
        self.position = nn.Parameter(torch.zeros(1, 3 * context_length, n_embd))
        self.global_position = nn.Embedding(max_timestep + 1, n_embd)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, n_layer, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, n_actions, bias=False)
        for name, module in self.named_modules():  # minGPT's initialisation, outside the trunk
            if name.startswith("encoder"):
                continue
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.normal_(module.in_proj_weight, 0.0, 0.02)
        #: The largest return-to-go seen in training (the default target return is a multiple of it).
        self.register_buffer("max_return", torch.zeros(()))

    @property
    def padding_action(self) -> int:
        return self.n_actions

    def embed_states(self, obs: torch.Tensor) -> torch.Tensor:
        """State token embeddings (B, K, n_embd) of raw observations (B, K, *obs_shape)."""
        b, k = obs.shape[:2]
        return self.state_embedding(self.encoder(obs.reshape(b * k, *obs.shape[2:]))).reshape(b, k, -1)

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, rtg: torch.Tensor, first_timestep: torch.Tensor
    ) -> torch.Tensor:
        """Action logits (B, K, A) at the state tokens.

        Args:
            obs: (B, K, *obs_shape) raw observations.
            action: (B, K) int64, the padding token where no action is known.
            rtg: (B, K) returns-to-go.
            first_timestep: (B,) the episode step of each window's first step.
        """
        return self.logits(self.embed_states(obs), action, rtg, first_timestep)

    def logits(
        self, states: torch.Tensor, action: torch.Tensor, rtg: torch.Tensor, first_timestep: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`forward` from state embeddings (:meth:`embed_states`), as acting caches them."""
        b, k = action.shape
        tokens = torch.stack(
            [self.rtg_embedding(rtg.unsqueeze(-1).float()), states, self.action_embedding(action)], dim=2
        ).reshape(b, 3 * k, -1)
        timestep = first_timestep.clamp(0, self.max_timestep)
        x = self.dropout(tokens + self.position[:, : 3 * k] + self.global_position(timestep)[:, None])
        mask = nn.Transformer.generate_square_subsequent_mask(3 * k, device=x.device, dtype=x.dtype)
        x = self.norm(self.transformer(x, mask=mask, is_causal=True))
        return self.head(x[:, 1::3])


@dataclass
class DTContext:
    """The acting state of every env slot: its last K steps, left-aligned (real steps first).

    The observations are kept as their state embeddings (each frame goes through the trunk once, not
    K times), so a context belongs to the weights it was filled with: evaluation starts a new one.

    Attributes:
        states: (n, K, n_embd) state embeddings; action: (n, K), the padding token where none was taken;
        rtg: (n, K) returns-to-go; length: (n,) real steps held; timestep: (n,) the current step of the
        episode; target: (n,) the current return-to-go (lowered by each reward).
    """

    states: torch.Tensor
    action: torch.Tensor
    rtg: torch.Tensor
    length: torch.Tensor
    timestep: torch.Tensor
    target: torch.Tensor

    @classmethod
    def empty(cls, states: torch.Tensor, k: int, padding_action: int) -> DTContext:
        """An empty context for the n slots of ``states`` (n, n_embd)."""
        n, device = states.shape[0], states.device
        return cls(
            states=torch.zeros((n, k, states.shape[1]), dtype=states.dtype, device=device),
            action=torch.full((n, k), padding_action, dtype=torch.long, device=device),
            rtg=torch.zeros((n, k), device=device),
            length=torch.zeros(n, dtype=torch.long, device=device),
            timestep=torch.zeros(n, dtype=torch.long, device=device),
            target=torch.zeros(n, device=device),
        )

    def reset(self, slots: torch.Tensor, target: float, padding_action: int) -> None:
        """Starts a new episode in the ``slots`` (bool mask) at the return ``target``."""
        self.states[slots] = 0.0
        self.action[slots] = padding_action
        self.rtg[slots] = 0.0
        self.length[slots] = 0
        self.timestep[slots] = 0
        self.target[slots] = target

    def push(self, states: torch.Tensor, padding_action: int) -> torch.Tensor:
        """Appends each slot's state embedding (n, n_embd) and current return-to-go (dropping the oldest step of a full
        window); returns the index of the new step in each window."""
        k = self.action.shape[1]
        full = self.length == k
        if bool(full.any()):
            self.states[full] = self.states[full].roll(-1, dims=1)
            self.action[full] = self.action[full].roll(-1, dims=1)
            self.rtg[full] = self.rtg[full].roll(-1, dims=1)
            self.length[full] = k - 1
        rows = torch.arange(states.shape[0], device=states.device)
        self.states[rows, self.length] = states
        self.rtg[rows, self.length] = self.target
        self.action[rows, self.length] = padding_action
        self.length += 1
        return self.length - 1


class DecisionTransformer(OfflineAgent):
    """Return-conditioned Decision Transformer (the contract's :class:`OfflineAgent`, windows of K)."""

    name: ClassVar[str] = "dt"
    needs_sequences: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "lr": 5e-4,
        "batch_size": 512,
        "context_length": 10,
        "n_layer": 6,
        "n_head": 8,
        "n_embd": 128,
        "dropout": 0.1,
        "weight_decay": 0.1,
        "max_grad_norm": 1.0,
        "warmup_tokens": 10_240,
        "final_tokens": 60_000_000,
        "return_multiplier": 5.0,
        "target_return": 0.0,
        "max_timestep": 4096,
    }
    ranges: ClassVar[dict[str, Range]] = {
        "context_length": COUNT,
        "n_layer": COUNT,
        "n_head": COUNT,
        "n_embd": COUNT,
        "dropout": Range(0.0, 1.0, high_open=True),
        "weight_decay": NON_NEGATIVE,
        "max_grad_norm": POSITIVE,
        "warmup_tokens": Range(0, math.inf, high_open=True),
        "final_tokens": COUNT,
        "return_multiplier": NON_NEGATIVE,
        "target_return": Range(-math.inf, math.inf, True, True),
        "max_timestep": COUNT,
    }

    @classmethod
    def check_kwargs(cls, kwargs: dict[str, Any]) -> None:
        """The base checks, then: ``n_embd`` a multiple of ``n_head`` (attention splits it evenly)."""
        super().check_kwargs(kwargs)
        merged = {**cls.defaults, **kwargs}
        if merged["n_embd"] % merged["n_head"]:
            raise ValueError(
                f"agent argument n_embd={merged['n_embd']} of 'dt' is not a multiple of n_head={merged['n_head']}; "
                "valid: n_embd divisible by n_head"
            )

    def __init__(self, observation_space: Any, action_space: Any, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, **kwargs)
        k = self.kwargs
        self.sequence_length = int(k["context_length"])
        with self.init_seeded():
            model = DTModel(
                observation_space,
                self.n_actions,
                self.sequence_length,
                k["n_layer"],
                k["n_head"],
                k["n_embd"],
                k["dropout"],
                k["max_timestep"],
            ).to(self.device)
        self.networks = {"model": model}
        self.optimizers = {
            "model": torch.optim.AdamW(param_groups(model, k["weight_decay"]), lr=k["lr"], betas=(0.9, 0.95))
        }
        self.context: DTContext | None = None

    # -- learning ---------------------------------------------------------------------------------

    def lr_multiplier(self, step: int) -> float:
        """Linear warm-up over ``warmup_tokens``, then a cosine to 10 % at ``final_tokens`` (held there)."""
        k = self.kwargs
        tokens = (step + 1) * self.batch_size * self.sequence_length
        if tokens < k["warmup_tokens"]:
            return tokens / max(1, k["warmup_tokens"])
        progress = min(1.0, (tokens - k["warmup_tokens"]) / max(1, k["final_tokens"] - k["warmup_tokens"]))
        return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        model = self.networks["model"]
        mask = batch["mask"].bool()
        action = torch.where(mask, batch["action"].long(), model.padding_action)
        rtg = torch.where(mask, batch["rtg"].float(), 0.0)
        if bool(mask.any()):
            model.max_return.fill_(torch.maximum(model.max_return, rtg[mask].max()))
        lr = self.kwargs["lr"] * self.lr_multiplier(self.step)
        for group in self.optimizers["model"].param_groups:
            group["lr"] = lr
        self.set_training(True)
        with self.seeded_torch():  # dropout draws from the agent's seed
            logits = model(batch["obs"], action, rtg, batch["timestep"][:, 0].long())
            loss = masked_cross_entropy(logits, action, mask)
            self.gradient_step("model", loss, self.kwargs["max_grad_norm"])
        self.step += 1
        return {"loss": loss.item(), "lr": lr, "max_return": model.max_return.item()}

    # -- acting -----------------------------------------------------------------------------------

    @property
    def target_return(self) -> float:
        """The return each episode is conditioned on at its start."""
        k = self.kwargs
        if k["target_return"] != 0:
            return float(k["target_return"])
        return float(k["return_multiplier"]) * self.networks["model"].max_return.item()

    def predict(
        self,
        observation: Any,
        state: DTContext | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, DTContext]:
        """Actions for a batch of env slots; ``state`` holds each slot's window (reset where
        ``episode_start``). :meth:`observe` then lowers each slot's return-to-go by its reward."""
        model = self.networks["model"]
        self.set_training(False)
        with torch.no_grad():
            states = model.embed_states(self.obs_tensor(observation).unsqueeze(1))[:, 0]
        n = states.shape[0]
        pad = model.padding_action
        if state is None or state.length.shape[0] != n:
            state = DTContext.empty(states, self.sequence_length, pad)
            episode_start = np.ones(n, dtype=bool)
        if episode_start is not None:
            start = torch.as_tensor(np.asarray(episode_start, dtype=bool), device=self.device)
            state.reset(start, self.target_return, pad)
        newest = state.push(states, pad)
        rows = torch.arange(n, device=self.device)
        with torch.no_grad():
            logits = model.logits(state.states, state.action, state.rtg, state.timestep - newest)[
                rows, newest
            ]
            if deterministic:
                action = logits.argmax(dim=1)
            else:
                action = torch.multinomial(logits.softmax(dim=1), 1, generator=self.generator).squeeze(1)
        state.action[rows, newest] = action
        self.context = state
        return action.cpu().numpy(), state

    def observe(self, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Lowers each slot's return-to-go by its reward and advances its timestep."""
        if self.context is None:
            return
        self.context.target -= torch.as_tensor(np.asarray(rewards, dtype=np.float32), device=self.device)
        self.context.timestep += 1


def masked_cross_entropy(logits: torch.Tensor, action: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (B, K, A) against ``action`` (B, K) over the steps ``mask`` keeps."""
    targets = torch.where(mask, action, 0)
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    weights = mask.reshape(-1).float()
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on the weights of Linear and Conv layers and of attention's input
    projection (gen_dgrl decays Conv weights too); none on biases, norms, embeddings, positions."""
    decay = []
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            decay.append(module.weight)
        elif isinstance(module, nn.MultiheadAttention):
            decay.append(module.in_proj_weight)
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
