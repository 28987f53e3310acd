"""PPO's rollout storage on the training device, with GAE computed there.

:class:`DeviceRolloutBuffer` is stable-baselines3's ``RolloutBuffer`` (same attributes, same
``get(batch_size)``, same minibatch order) whose storage is torch tensors on the training device:
observations once, in the observation space's dtype (``uint8`` for images), actions, values and
log-probs as the policy produced them, and rewards and episode starts staged on the host during the
rollout and moved to the device once, before GAE. GAE (Schulman et al. 2016, "High-Dimensional
Continuous Control Using Generalized Advantage Estimation", https://arxiv.org/abs/1506.02438) runs on
the device as one backward pass over time, vectorised over envs, in the same float32 operations and
order as SB3's numpy loop, so advantages and returns are SB3's (bitwise on CPU; tested in
``tests/agents/test_engine.py``). Minibatches are device index slices of the env-major flattened
rollout, drawn from the same ``np.random.permutation`` as SB3's (SB3 seeds numpy's global generator
from the run seed), so a run on this buffer trains on the same minibatches as SB3's.

The numpy arrays SB3 callers read (``advantages``, ``returns``, ``values``, ``episode_starts``,
``observations``, ...) are properties made lazily from the device tensors on first access and
cached until the storage changes: ``(buffer_size, n_envs, ...)`` before :meth:`get`, env-major flat
after it (as SB3's ``swap_and_flatten``). They are read-only copies on every device (assigning the
attribute writes into the storage), except ``rewards`` and ``episode_starts``, which are the host
arrays themselves and stay (T, E), as in SB3.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import RolloutBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

#: The storage fields and where each lives: on the device for the whole rollout, or staged on the
#: host while collecting and moved to the device once, before GAE.
DEVICE_FIELDS: tuple[str, ...] = ("observations", "actions", "values", "log_probs", "advantages", "returns")
HOST_STAGED_FIELDS: tuple[str, ...] = ("rewards", "episode_starts")


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a numpy dtype (``uint8`` -> ``torch.uint8``, ...)."""
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    episode_starts: torch.Tensor,
    last_values: torch.Tensor,
    last_dones: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(lambda) advantages and lambda-returns of a rollout, vectorised over envs.

    With ``m_t = 1 - episode_starts[t + 1]`` (``1 - last_dones`` after the last step) and
    ``v_{T} = last_values``::

        delta_t = r_t + gamma * v_{t+1} * m_t - v_t
        A_t = delta_t + (gamma * lambda) * m_t * A_{t+1},   A_T = 0
        R_t = A_t + v_t

    The deltas of all steps are one vectorised expression; the recursion is one backward pass over
    time. The float32 operations and their order are SB3's ``compute_returns_and_advantage``.

    Args:
        rewards: (T, E) float32, truncation bootstraps already added.
        values: (T, E) float32 value estimates of the observations.
        episode_starts: (T, E) float32, 1 where the observation starts an episode.
        last_values: (E,) values of the observation after the last step.
        last_dones: (E,) float32, 1 where the last step ended an episode.
        gamma: Discount factor.
        gae_lambda: GAE lambda.

    Returns:
        ``(advantages, returns)``, each (T, E) float32 on the tensors' device.
    """
    next_non_terminal = 1.0 - torch.cat([episode_starts[1:], last_dones.reshape(1, -1)])
    next_values = torch.cat([values[1:], last_values.reshape(1, -1)])
    deltas = rewards + gamma * next_values * next_non_terminal - values
    coefficients = gamma * gae_lambda * next_non_terminal
    advantages = torch.empty_like(values)
    last = torch.zeros_like(values[0])
    for step in range(values.shape[0] - 1, -1, -1):
        last = deltas[step] + coefficients[step] * last
        advantages[step] = last
    return advantages, advantages + values


class DeviceRolloutBuffer(RolloutBuffer):
    """SB3's ``RolloutBuffer`` with its storage on the training device and GAE computed there.

    Same constructor, attributes and ``get(batch_size)`` as SB3's (so PPO's update, agents' hooks, PLR
    scoring and ``explained_variance`` work unchanged); see the module docstring for where each field
    lives. ``add`` takes device tensors (observations, actions, values, log-probs stay where they
    are) or numpy arrays; :meth:`observation_slot` lets the collection loop write the observations
    of a step straight into their slot (one host-to-device copy per step) and act on that slot.

    Args:
        buffer_size: Steps per env per rollout (T).
        observation_space: Observation space (Box, Discrete, MultiDiscrete, MultiBinary).
        action_space: Action space.
        device: Torch device of the storage (the policy's).
        gae_lambda: GAE lambda.
        gamma: Discount factor.
        n_envs: Envs (E).

    Raises:
        ValueError: For a Dict observation space (use ``engine="sb3"``, SB3's DictRolloutBuffer).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        gae_lambda: float = 1,
        gamma: float = 0.99,
        n_envs: int = 1,
    ) -> None:
        if isinstance(observation_space, spaces.Dict):
            raise ValueError(
                "engine='heldout' stores Box, Discrete, MultiDiscrete or MultiBinary observations; "
                "got a Dict observation space (use engine='sb3')"
            )
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.gae_lambda = gae_lambda
        self.gamma = gamma
        steps, envs = buffer_size, n_envs
        obs_dtype = torch_dtype(observation_space.dtype)
        # One extra observation slot: the observation after the last step (GAE's bootstrap).
        self._obs = torch.zeros((steps + 1, envs, *self.obs_shape), dtype=obs_dtype, device=self.device)
        self._device = {
            "actions": torch.zeros((steps, envs, self.action_dim), dtype=torch.float32, device=self.device),
            "values": torch.zeros((steps, envs), dtype=torch.float32, device=self.device),
            "log_probs": torch.zeros((steps, envs), dtype=torch.float32, device=self.device),
            "advantages": torch.zeros((steps, envs), dtype=torch.float32, device=self.device),
            "returns": torch.zeros((steps, envs), dtype=torch.float32, device=self.device),
        }
        self._staged: dict[str, np.ndarray] = {}
        self._flat: dict[str, torch.Tensor] = {}
        self._host: dict[str, np.ndarray] = {}
        self.reset()

    # -- SB3's interface -----------------------------------------------------------------------

    def reset(self) -> None:
        """Starts a new rollout. The device storage is reused (every slot is written before it is
        read); the staged host arrays are new, so arrays a caller kept from the last rollout stay."""
        shape = (self.buffer_size, self.n_envs)
        self._staged = {name: np.zeros(shape, dtype=np.float32) for name in HOST_STAGED_FIELDS}
        self.generator_ready = False
        self._flat = {}
        self._host = {}
        BaseBuffer.reset(self)

    def observation_slot(self, pos: int | None = None) -> torch.Tensor:
        """The device tensor (n_envs, *obs_shape) holding the observations of step ``pos`` (default:
        the next step to add; ``buffer_size`` is the bootstrap observation after the last step)."""
        return self._obs[self.pos if pos is None else pos]

    def put_observations(self, obs: np.ndarray | torch.Tensor, pos: int | None = None) -> torch.Tensor:
        """Copies one step's observations (host or device) into their slot; returns the slot."""
        slot = self.observation_slot(pos)
        source = torch.as_tensor(obs).reshape(slot.shape)
        slot.copy_(source)
        self._host.pop("observations", None)
        return slot

    def add(
        self,
        obs: np.ndarray | torch.Tensor,
        action: np.ndarray | torch.Tensor,
        reward: np.ndarray,
        episode_start: np.ndarray,
        value: torch.Tensor,
        log_prob: torch.Tensor,
    ) -> None:
        """Adds one step of all envs, as SB3's ``add``; ``obs`` may be the step's own slot (then
        nothing is copied)."""
        slot = self._obs[self.pos]
        if not (isinstance(obs, torch.Tensor) and obs.data_ptr() == slot.data_ptr()):
            self.put_observations(obs, self.pos)
        actions = torch.as_tensor(action).to(device=self.device, dtype=torch.float32)
        self._device["actions"][self.pos].copy_(actions.reshape(self.n_envs, self.action_dim))
        self._device["values"][self.pos].copy_(value.detach().reshape(self.n_envs))
        self._device["log_probs"][self.pos].copy_(log_prob.detach().reshape(self.n_envs))
        self._staged["rewards"][self.pos] = np.asarray(reward)
        self._staged["episode_starts"][self.pos] = np.asarray(episode_start)
        self._host = {}
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        """GAE on the device (:func:`gae`): one transfer of the staged rewards and episode starts."""
        device = self.device
        rewards = torch.from_numpy(self._staged["rewards"]).to(device)
        starts = torch.from_numpy(self._staged["episode_starts"]).to(device)
        last_dones = torch.from_numpy(np.asarray(dones).astype(np.float32)).to(device)
        last_values = last_values.detach().to(device=device, dtype=torch.float32).flatten()
        advantages, returns = gae(
            rewards, self._device["values"], starts, last_values, last_dones, self.gamma, self.gae_lambda
        )
        self._device["advantages"].copy_(advantages)
        self._device["returns"].copy_(returns)
        self._host = {}

    def get(self, batch_size: int | None = None) -> Generator[RolloutBufferSamples, None, None]:
        """Minibatches of ``batch_size`` (default: the whole rollout) in SB3's order: a permutation
        of the env-major flat rollout from ``np.random.permutation``, as device index slices."""
        assert self.full, ""
        total = self.buffer_size * self.n_envs
        indices = np.random.permutation(total)
        if not self.generator_ready:
            # Observations are not flattened (no copy of the largest field): minibatches gather them
            # from the (T, E) storage at the flat index's step and env.
            self._flat = {
                name: self._swap_and_flatten(self._field(name))
                for name in DEVICE_FIELDS
                if name != "observations"
            }
            self.generator_ready = True
            self._host = {}
        if batch_size is None:
            batch_size = total
        device_indices = torch.from_numpy(indices).to(self.device)
        start = 0
        while start < total:
            yield self._get_samples(device_indices[start : start + batch_size])
            start += batch_size

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray | torch.Tensor, env: VecNormalize | None = None
    ) -> RolloutBufferSamples:
        if not isinstance(batch_inds, torch.Tensor):
            batch_inds = torch.as_tensor(batch_inds, device=self.device)
        flat = self._flat
        steps = self.buffer_size  # flat index = env * T + step (env-major, as SB3's)
        return RolloutBufferSamples(
            self._obs[batch_inds % steps, batch_inds // steps],
            flat["actions"][batch_inds],
            flat["values"][batch_inds].flatten(),
            flat["log_probs"][batch_inds].flatten(),
            flat["advantages"][batch_inds].flatten(),
            flat["returns"][batch_inds].flatten(),
        )

    # -- storage -------------------------------------------------------------------------------

    def _field(self, name: str) -> torch.Tensor:
        """The (T, E, ...) tensor of a field (staged ones: a CPU view of the staged array)."""
        if name == "observations":
            return self._obs[: self.buffer_size]
        if name in HOST_STAGED_FIELDS:
            return torch.from_numpy(self._staged[name])
        return self._device[name]

    @staticmethod
    def _swap_and_flatten(tensor: torch.Tensor) -> torch.Tensor:
        """(T, E, ...) -> (E * T, ...), env-major; (T, E) -> (E * T, 1) (SB3's ``swap_and_flatten``)."""
        if tensor.dim() < 3:
            tensor = tensor.unsqueeze(-1)
        shape = tensor.shape
        return tensor.transpose(0, 1).reshape(shape[0] * shape[1], *shape[2:])

    def device_tensor(self, name: str) -> torch.Tensor:
        """A field as a tensor, without a numpy copy, in SB3's layout: (T, E, ...) before :meth:`get`,
        env-major flat after it for the fields SB3 flattens (:data:`DEVICE_FIELDS`); rewards and
        episode starts stay (T, E) on the host, as SB3 keeps them."""
        if name in HOST_STAGED_FIELDS:
            return torch.from_numpy(self._staged[name])
        if self.generator_ready:
            if name == "observations":
                return self._swap_and_flatten(self._field(name))  # a copy, made on demand only
            return self._flat[name]
        return self._field(name)

    def _numpy(self, name: str) -> np.ndarray:
        if name in HOST_STAGED_FIELDS:
            return self._staged[name]
        if name not in self._host:
            # A read-only copy also on CPU: the same semantics on every device (a snapshot of the
            # storage; editing it in place raises instead of silently not reaching the storage).
            array = self.device_tensor(name).detach().cpu().numpy().copy()
            array.flags.writeable = False
            self._host[name] = array
        return self._host[name]

    def _assign(self, name: str, value: Any) -> None:
        if name in HOST_STAGED_FIELDS:
            self._staged[name][...] = np.asarray(value, dtype=np.float32).reshape(self._staged[name].shape)
            return
        if name == "observations":
            target = self._field(name)  # (T, E, ...): a flat value is env-major (E * T, ...)
            value = torch.as_tensor(np.asarray(value))
            if self.generator_ready:
                value = value.reshape(self.n_envs, self.buffer_size, *self.obs_shape).transpose(0, 1)
            target.copy_(value.reshape(target.shape))
        else:
            target = self.device_tensor(name)
            target.copy_(torch.as_tensor(np.asarray(value)).reshape(target.shape))
        self._host.pop(name, None)


#: SB3-side rollout buffer class -> its device counterpart, for ``engine="heldout"``; modules that
#: define a buffer pair register it here (:mod:`heldout.agents.level_buffer`).
DEVICE_COUNTERPARTS: dict[type, type] = {RolloutBuffer: DeviceRolloutBuffer}


def device_buffer_class(buffer_class: type | None) -> type:
    """The device rollout buffer class that stands in for ``buffer_class`` (None: SB3's default).

    Raises:
        ValueError: For a buffer class with no device counterpart, naming the ones there are.
    """
    if buffer_class is None:
        return DeviceRolloutBuffer
    if isinstance(buffer_class, type) and issubclass(buffer_class, DeviceRolloutBuffer):
        return buffer_class
    if buffer_class in DEVICE_COUNTERPARTS:
        return DEVICE_COUNTERPARTS[buffer_class]
    valid = ", ".join(sorted(cls.__name__ for cls in DEVICE_COUNTERPARTS))
    name = getattr(buffer_class, "__name__", repr(buffer_class))
    raise ValueError(
        f"engine='heldout' has no device counterpart of rollout_buffer_class {name}; valid: {valid} "
        "(or a DeviceRolloutBuffer subclass), or use engine='sb3'"
    )


def _numpy_property(name: str) -> property:
    def getter(self: DeviceRolloutBuffer) -> np.ndarray:
        return self._numpy(name)

    def setter(self: DeviceRolloutBuffer, value: Any) -> None:
        self._assign(name, value)

    return property(getter, setter, doc=f"``{name}`` as a numpy array (made lazily from the storage).")


for _name in (*DEVICE_FIELDS, *HOST_STAGED_FIELDS):
    setattr(DeviceRolloutBuffer, _name, _numpy_property(_name))


#: :func:`collect_on_device`'s own local names, which SB3's ``collect_rollouts`` does not have: the
#: callbacks' ``locals`` leave them out (and name the model ``self``), so that a callback sees SB3's.
ENGINE_LOCALS: frozenset[str] = frozenset(
    {"model", "augment", "policy", "stage", "box", "discrete", "actions_tensor", "next_slot", "raw_obs"}
)


def _sb3_locals(frame: dict[str, Any]) -> dict[str, Any]:
    """The engine's locals as SB3's ``collect_rollouts`` names them (``self``: the model)."""
    names = {name: value for name, value in frame.items() if name not in ENGINE_LOCALS}
    names["self"] = frame["model"]
    return names


def augment_terminal_observations(infos: list[dict[str, Any]], augment: Any, device: torch.device) -> None:
    """Replaces the ``terminal_observation`` of every info that has one (terminated or truncated
    episodes alike) by ``augment(observation, env_index=index)``, in env order, as SB3's path with
    :meth:`~heldout.agents.ppo.PPO.augment_rollout` transforms them inside the env's step."""
    for index, info in enumerate(infos):
        if "terminal_observation" in info:
            single = torch.as_tensor(np.asarray(info["terminal_observation"]), device=device)
            info["terminal_observation"] = augment(single, env_index=index).cpu().numpy()


def collect_on_device(
    model: Any,
    env: VecEnv,
    callback: BaseCallback,
    rollout_buffer: DeviceRolloutBuffer,
    n_rollout_steps: int,
    augment: Any = None,
) -> bool:
    """SB3's ``OnPolicyAlgorithm.collect_rollouts`` on a :class:`DeviceRolloutBuffer`.

    The same steps, callbacks (``on_rollout_start``, ``update_locals`` + ``on_step`` after every env
    step, ``on_rollout_end`` after GAE) with the same ``locals`` (``self`` among them, the same names
    and values: SB3's path with ``augment_rollout`` shows the augmented ``new_obs`` and terminal
    observations, and so does this one), ``ep_info_buffer``, ``num_timesteps``, ``_last_obs`` (the
    env's own observations once the rollout ends) and ``_last_episode_starts`` as SB3, and the same
    truncation bootstrap (``r += gamma * V(terminal_observation)`` where an episode ended with
    ``TimeLimit.truncated``), but per step only one host-to-device copy (the observations, written
    into their buffer slot and acted on there) and one device-to-host copy (the actions; with
    ``augment`` also the augmented observations, which the callbacks see); values and log-probs stay
    on the device.

    Args:
        model: The on-policy algorithm (``policy``, ``_last_obs``, ``gamma``, ...).
        env: The training VecEnv.
        callback: SB3 callback.
        rollout_buffer: The buffer to fill.
        n_rollout_steps: Steps per env.
        augment: ``augment(obs, env_index=None) -> obs`` on device tensors, applied to the
            observations in their buffer slot before the policy acts on them (RAD's
            :meth:`~heldout.agents.ppo.PPO.augment_rollout_tensor`), and, first, to the terminal
            observation of every finished episode (with its ``env_index``), in the order SB3's path
            applies them, so an augmentation that draws randomness per call draws the same; None: none.

    Returns:
        True if the rollout is complete, False if a callback stopped it.
    """
    assert model._last_obs is not None, "No previous observation was provided"
    policy = model.policy
    policy.set_training_mode(False)
    n_steps = 0
    rollout_buffer.reset()
    if model.use_sde:
        policy.reset_noise(env.num_envs)
    callback.on_rollout_start()

    def stage(observations: Any, pos: int) -> torch.Tensor:
        slot = rollout_buffer.put_observations(observations, pos)
        if augment is not None:
            slot.copy_(augment(slot))
        return slot

    raw_obs = model._last_obs
    next_slot = stage(raw_obs, 0)
    if augment is not None:  # as SB3's path: the policy's last observation is the augmented one
        model._last_obs = next_slot.cpu().numpy()
    box = isinstance(model.action_space, spaces.Box)
    discrete = isinstance(model.action_space, spaces.Discrete)
    while n_steps < n_rollout_steps:
        if model.use_sde and model.sde_sample_freq > 0 and n_steps % model.sde_sample_freq == 0:
            policy.reset_noise(env.num_envs)
        obs_tensor = next_slot
        with torch.no_grad():
            actions_tensor, values, log_probs = policy(obs_tensor)
        actions = actions_tensor.cpu().numpy()
        clipped_actions = actions
        if box:
            if policy.squash_output:
                clipped_actions = policy.unscale_action(clipped_actions)
            else:
                clipped_actions = np.clip(actions, model.action_space.low, model.action_space.high)

        new_obs, rewards, dones, infos = env.step(clipped_actions)
        raw_obs = new_obs
        if augment is not None:  # as SB3's path: the terminal observations, then the step's
            augment_terminal_observations(infos, augment, rollout_buffer.device)
        next_slot = stage(new_obs, rollout_buffer.pos + 1)
        if augment is not None:
            new_obs = next_slot.cpu().numpy()
        model.num_timesteps += env.num_envs
        callback.update_locals(_sb3_locals(locals()))
        if not callback.on_step():
            if augment is not None:  # as SB3's path, which restores the env's own observation
                model._last_obs = raw_obs
            return False
        model._update_info_buffer(infos, dones)
        n_steps += 1
        if discrete:
            actions = actions.reshape(-1, 1)

        # Truncated episodes: bootstrap with the value of their final observation (SB3 issue 633).
        # The loop and its names are SB3's, so that the callbacks' locals are too.
        for idx, done in enumerate(dones):
            if (
                done
                and infos[idx].get("terminal_observation") is not None
                and infos[idx].get("TimeLimit.truncated", False)
            ):
                terminal_obs = policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                with torch.no_grad():
                    terminal_value = policy.predict_values(terminal_obs)[0].cpu()
                rewards[idx] += model.gamma * terminal_value

        rollout_buffer.add(obs_tensor, actions_tensor, rewards, model._last_episode_starts, values, log_probs)
        model._last_obs = new_obs
        model._last_episode_starts = dones

    with torch.no_grad():
        values = policy.predict_values(next_slot)
    rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
    callback.update_locals(_sb3_locals(locals()))
    callback.on_rollout_end()
    model._last_obs = raw_obs  # the env's own observation (as SB3's path): the next rollout augments it
    return True


__all__ = [
    "DEVICE_COUNTERPARTS",
    "ENGINE_LOCALS",
    "DEVICE_FIELDS",
    "HOST_STAGED_FIELDS",
    "DeviceRolloutBuffer",
    "augment_terminal_observations",
    "collect_on_device",
    "device_buffer_class",
    "gae",
    "torch_dtype",
]
