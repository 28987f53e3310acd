"""The carl-visible-context finding's reading, checked: what a visible-context policy sees on held-out
contexts, and what it scores when that input is held inside the range it trained on.

For each run folder given (runs of ``heldout findings run carl-visible-context``'s visible arm, or
``heldout train --preset cartpole-gravity-extrapolation --visible-context concat``), it prints

* the context inputs the policy sees on its train and test evaluation lists (the normalised context,
  as the run's ``visible_context_scale`` maps it), and
* its test return as recorded (``summary.json``), re-evaluated on the same test list (the same
  contexts and reset seeds; the actions a stochastic policy samples differ, so this column shows the
  re-evaluation's own noise), and re-evaluated with every context input clipped to
  [0, 1], the training range under ``visible_context_scale: training``
  (so a test gravity reads as the strongest training gravity while the physics stay the test's).

If the clipped return recovers toward the hidden-context agents', the extrapolated input is what
breaks the visible agent (docs/findings.md, carl-visible-context). Writes nothing.

    python benchmarks/carl_context_inputs.py findings/carl-visible-context-cpu/visible_context=concat/*/*/seed*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np


class ClippedContext:
    """A model whose observations have their last ``width`` entries (the context) clipped to [0, 1]."""

    def __init__(self, model: Any, width: int) -> None:
        self.model, self.width = model, width
        self.policy = getattr(model, "policy", None)

    def predict(self, obs: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        obs = np.array(obs, dtype=np.float32, copy=True)
        obs[..., -self.width :] = obs[..., -self.width :].clip(0.0, 1.0)
        return self.model.predict(obs, *args, **kwargs)


def context_inputs(config: Any, lists: dict[str, list]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split, the lowest and highest context input the policy sees over the evaluation list."""
    from heldout.protocol.families import family_for

    env = family_for(config.env).probe_env(config)
    width = len(env.unwrapped.context_space)
    out = {}
    for split, items in lists.items():
        seen = np.array(
            [env.reset(seed=int(i["seed"]), options={"context": i["context"]})[0][-width:] for i in items]
        )
        out[split] = (seen.min(axis=0), seen.max(axis=0))
    return out


def main(argv: list[str] | None = None) -> int:
    """Prints the inputs and the clipped re-evaluation of each run folder given."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of visible-context runs")
    args = parser.parse_args(argv)
    from heldout.protocol.checkpoint import load_trained_model
    from heldout.protocol.evaluate import torch_threads
    from heldout.protocol.families import family_for
    from heldout.protocol.run_folder import load_run, read_eval_lists, read_summary

    for i, run in enumerate(args.runs):
        config, path = load_run(run)
        if config.visible_context != "concat":
            print(f"{run}: visible_context is {config.visible_context!r}, not 'concat'", file=sys.stderr)
            return 2
        lists, _ = read_eval_lists(path / "split.json")
        family = family_for(config.env)
        width = len(family.space)
        if i == 0:
            names = family.space.names
            for split, (lo, hi) in context_inputs(config, lists).items():
                ranges = ", ".join(f"{n} {a:.3f}..{b:.3f}" for n, a, b in zip(names, lo, hi) if b > a)
                print(f"context inputs on the {split} list ({config.visible_context_scale} scale): {ranges}")
        with torch_threads(config.torch_threads or 1):
            model = load_trained_model(config, path)
            again, clipped = (
                family.evaluate(m, config, lists["test"], "test", seed=config.seed + 2)
                for m in (model, ClippedContext(model, width))
            )
        recorded = read_summary(path / "summary.json")["splits"]["test"]["mean"]
        print(
            f"seed {config.seed}: test {recorded:.1f} recorded, {again.mean:.1f} re-evaluated, "
            f"{clipped.mean:.1f} with the context input clipped to [0, 1]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
