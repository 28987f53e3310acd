"""Reference controllers for the contextual envs: hand-written policies that say how hard a context is.

A learned policy that fails on a test range may face a hard range or an impossible one. These
controllers, one per family, tell the two apart (:mod:`heldout.bench.contexts`): where a controller
that is given the episode's physics still fails, no context-blind policy should be expected to
succeed either. Each is registered in :data:`CONTROLLERS` under its env family's name:

* ``cartpole``: discrete-time LQR on gymnasium's CartPole equations linearised about the upright pole
  (Euler step ``tau``), gains from the episode's context, the force's sign as the push (bang-bang LQR);
* ``mountaincar`` and ``mountaincar-continuous``: energy pumping, pushing in the direction of motion
  (the engine then only adds energy; Moore 1990's car, as in Sutton & Barto 2018, ex. 10.1);
* ``acrobot``: energy pumping at the actuated joint, torque with the second joint's velocity (its power
  ``tau * dtheta2`` is never negative; after Spong 1995's energy-based swing-up);
* ``pendulum``: energy-based swing-up (Astrom & Furuta 2000) with the episode's mass, length, gravity and
  torque limit, then a PD controller on the upright position;
* ``lunarlander``: gymnasium's own heuristic lander, ``gymnasium.envs.box2d.lunar_lander.heuristic``.

A controller's ``reset(env)`` is called after each ``env.reset`` with the unwrapped env (whose physics
are the episode's context); ``act(obs)`` returns the action. ``uses_context`` says whether it reads
that context (privileged) or acts on the observation alone, like a context-blind agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from heldout.registry import Registry


class Controller:
    """A reference policy for one env family (see the module docstring)."""

    #: Reads the episode's physics (True) or only the observation (False).
    uses_context: bool = False
    #: What it does, in a few words, for the table.
    summary: str = ""

    def reset(self, env: Any) -> None:
        """Called after each reset with the unwrapped env (the episode's context applied)."""

    def act(self, obs: Any) -> Any:
        raise NotImplementedError

    def at_goal(self, obs: Any) -> bool | None:
        """For an env with no notion of success (Pendulum): whether the last observation is the
        controller's goal (None: no such check; the env's own verdict is the one that counts)."""
        return None


def solve_dare(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """The stabilising solution P of the discrete algebraic Riccati equation
    ``P = A'PA - A'PB (R + B'PB)^-1 B'PA + Q``, by the structure-preserving doubling algorithm
    (Chu, Fan, Lin & Wang 2004): quadratic convergence, a few dozen iterations at most.
    """
    a_k = np.array(a, dtype=np.float64)
    g_k = b @ np.linalg.solve(r, b.T)
    h_k = np.array(q, dtype=np.float64)
    eye = np.eye(a_k.shape[0])
    for _ in range(100):
        w = np.linalg.solve(eye + g_k @ h_k, np.hstack([a_k, g_k]))
        w_a, w_g = w[:, : a_k.shape[1]], w[:, a_k.shape[1] :]
        h_next = h_k + a_k.T @ h_k @ w_a
        g_k = g_k + a_k @ w_g @ a_k.T
        a_k = a_k @ w_a
        if np.max(np.abs(h_next - h_k)) <= tol * max(1.0, np.max(np.abs(h_next))):
            return h_next
        h_k = h_next
    raise ValueError("the Riccati iteration did not converge (is the system stabilisable?)")


def lqr_gain(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The discrete-time LQR gain K (``u = -K x``) of ``x' = A x + B u`` with costs ``x'Qx + u'Ru``."""
    p = solve_dare(a, b, q, r)
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def cartpole_linearization(
    gravity: float, masscart: float, masspole: float, length: float, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` of gymnasium's CartPole (state x, x_dot, theta, theta_dot; input the force) about the
    upright pole, with its Euler step of ``tau`` seconds.

    gymnasium's equations, linearised at theta = 0: ``theta_acc = (g theta - F / M) / d`` and
    ``x_acc = F / M - m l theta_acc / M``, with ``M`` the total mass, ``l`` the half-length and
    ``d = l (4/3 - m / M)``.
    """
    total = masscart + masspole
    d = length * (4.0 / 3.0 - masspole / total)
    ac = np.zeros((4, 4))
    bc = np.zeros((4, 1))
    ac[0, 1] = ac[2, 3] = 1.0
    ac[3, 2] = gravity / d
    bc[3, 0] = -1.0 / (total * d)
    ac[1, 2] = -masspole * length * ac[3, 2] / total
    bc[1, 0] = 1.0 / total - masspole * length * bc[3, 0] / total
    return np.eye(4) + tau * ac, tau * bc


class CartPoleLQR(Controller):
    """Bang-bang LQR: push right when the LQR force ``-K x`` is positive, left otherwise."""

    uses_context = True
    summary = "LQR from the episode's physics, force sign as the push"
    #: State and force costs (the pole angle weighs most).
    Q = np.diag([1.0, 1.0, 10.0, 1.0])
    R = np.array([[1.0]])

    def reset(self, env: Any) -> None:
        a, b = cartpole_linearization(env.gravity, env.masscart, env.masspole, env.length, env.tau)
        self.gain = lqr_gain(a, b, self.Q, self.R)[0]

    def act(self, obs: Any) -> int:
        return int(-float(self.gain @ np.asarray(obs, dtype=np.float64)) > 0.0)


class MountainCarPump(Controller):
    """Push in the direction of motion (left from rest): every push adds energy."""

    summary = "energy pumping: push with the velocity"

    def act(self, obs: Any) -> int:
        return 2 if obs[1] > 0 else 0


class MountainCarContinuousPump(Controller):
    """Full power in the direction of motion (right from rest)."""

    summary = "energy pumping: full power with the velocity"

    def act(self, obs: Any) -> np.ndarray:
        return np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32)


class AcrobotPump(Controller):
    """Torque +1 when the second joint turns forward, -1 otherwise: the motor's power is never negative."""

    summary = "energy pumping: torque with the second joint's velocity"

    def act(self, obs: Any) -> int:
        return 2 if obs[5] > 0 else 0


class PendulumSwingUp(Controller):
    """Energy swing-up, then PD control near the top (gymnasium's pendulum is a rod: I = m l^2 / 3)."""

    uses_context = True
    summary = "energy swing-up, PD near the top, from the episode's physics"
    #: Switch to PD when cos(theta) exceeds this (about 32 degrees from upright).
    CATCH = 0.85

    def reset(self, env: Any) -> None:
        self.m, self.g, self.l = float(env.m), float(env.g), float(env.l)
        self.max_torque = float(env.max_torque)

    def act(self, obs: Any) -> np.ndarray:
        cos, sin, omega = (float(x) for x in obs)
        theta = float(np.arctan2(sin, cos))
        inertia = self.m * self.l**2 / 3.0
        stiffness = self.m * self.g * self.l / 2.0
        if cos > self.CATCH:
            torque = -(2.0 * stiffness * theta + 0.3 * stiffness * omega)
        else:
            energy = 0.5 * inertia * omega**2 + stiffness * (cos - 1.0)  # 0 at rest upright
            direction = omega if abs(omega) > 1e-3 else 1.0
            torque = self.max_torque * float(np.sign(-energy * direction))
        # the env applies action * max_torque / 2 (heldout.envs.contextual.pendulum)
        return np.array([np.clip(2.0 * torque / self.max_torque, -2.0, 2.0)], dtype=np.float32)

    def at_goal(self, obs: Any) -> bool:
        """Upright (within about 8 degrees) at the episode's last step."""
        return bool(float(obs[0]) > 0.99)


class LunarLanderHeuristic(Controller):
    """gymnasium's heuristic lander (PD control of angle and hover height, written for default physics)."""

    summary = "gymnasium's heuristic lander"

    def reset(self, env: Any) -> None:
        self.env = env

    def act(self, obs: Any) -> Any:
        from gymnasium.envs.box2d.lunar_lander import heuristic

        return heuristic(self.env, obs)


#: env family -> controller class.
CONTROLLERS: Registry[Callable[[], Controller]] = Registry("reference controller")
CONTROLLERS.register("cartpole", CartPoleLQR, help=CartPoleLQR.summary)
CONTROLLERS.register("mountaincar", MountainCarPump, help=MountainCarPump.summary)
CONTROLLERS.register(
    "mountaincar-continuous", MountainCarContinuousPump, help=MountainCarContinuousPump.summary
)
CONTROLLERS.register("acrobot", AcrobotPump, help=AcrobotPump.summary)
CONTROLLERS.register("pendulum", PendulumSwingUp, help=PendulumSwingUp.summary)
CONTROLLERS.register("lunarlander", LunarLanderHeuristic, help=LunarLanderHeuristic.summary)


__all__ = [
    "CONTROLLERS",
    "AcrobotPump",
    "CartPoleLQR",
    "Controller",
    "LunarLanderHeuristic",
    "MountainCarContinuousPump",
    "MountainCarPump",
    "PendulumSwingUp",
    "cartpole_linearization",
    "lqr_gain",
    "solve_dare",
]
