"""Test plugin (``heldout train --import``): SIGKILLs the training process at a chosen point.

``HELDOUT_TEST_KILL`` says where: ``update:N`` at the start of the N-th PPO update (``nan:N``: the
N-th update leaves NaN weights instead of a kill), ``rollout:N`` at
the N-th vector-env step (mid-rollout), ``final-eval`` in the first episode of the final evaluation
(the one of ``eval_episodes`` per split). Without it the plugin changes nothing, so the uninterrupted
reference run imports it too and both runs have the same config.
"""

from __future__ import annotations

import os
import signal

from stable_baselines3.common.vec_env import DummyVecEnv

import heldout.protocol.families.contextual as contextual
from heldout.agents.ppo import PPO

WHERE = os.environ.get("HELDOUT_TEST_KILL", "")
FINAL_EPISODES = int(os.environ.get("HELDOUT_TEST_FINAL_EPISODES", "0"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if WHERE.startswith("update:"):
    _at, _calls = int(WHERE.split(":")[1]), [0]
    _train = PPO.train

    def train(self):  # type: ignore[no-untyped-def]
        _calls[0] += 1
        if _calls[0] == _at:
            _die()
        return _train(self)

    PPO.train = train  # type: ignore[method-assign]

elif WHERE.startswith("nan:"):  # the N-th update leaves NaN weights (a diverged run)
    _at, _calls = int(WHERE.split(":")[1]), [0]
    _train = PPO.train

    def train(self):  # type: ignore[no-untyped-def]
        _train(self)
        _calls[0] += 1
        if _calls[0] == _at:
            import torch

            with torch.no_grad():
                next(self.policy.parameters()).fill_(float("nan"))

    PPO.train = train  # type: ignore[method-assign]

elif WHERE.startswith("rollout:"):
    _at, _calls = int(WHERE.split(":")[1]), [0]
    _step_wait = DummyVecEnv.step_wait

    def step_wait(self):  # type: ignore[no-untyped-def]
        _calls[0] += 1
        if _calls[0] == _at:
            _die()
        return _step_wait(self)

    DummyVecEnv.step_wait = step_wait  # type: ignore[method-assign]

elif WHERE == "final-eval":
    _contexts = contextual.evaluate_contexts

    def evaluate_contexts(model, make_env, items, *args, **kwargs):  # type: ignore[no-untyped-def]
        if len(items) == FINAL_EPISODES:
            _die()
        return _contexts(model, make_env, items, *args, **kwargs)

    contextual.evaluate_contexts = evaluate_contexts
