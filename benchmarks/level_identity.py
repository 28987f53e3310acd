"""Level identity: the layout fingerprint validated against a stronger check, on all 16 Procgen
games, and every preset's default evaluation lists checked by that stronger check (docs/levels.md).

    python benchmarks/level_identity.py agreement [--games maze,coinrun] [--out FILE.json]
    python benchmarks/level_identity.py presets [--out FILE.json]
    python benchmarks/level_identity.py presets --preset procgen-easy --all-games [--out FILE.json]

agreement: for each game, the pairs of levels in train 0:200 + test 100000000:100001000 (easy)
that the fingerprint (heldout.envs.procgen.level_identities, layout) calls equal, how many the
stronger check (whole-level first frame + agent-centred frames along three 100-step action
sequences, visual variety off; heldout.analysis.levels.strong_hashes) confirms, and the pairs it
calls equal that the fingerprint missed. presets: each level preset's lists (split.json's
eval_levels) by the stronger check: repeated seeds, levels equal to a training level, levels equal
to another listed level; with ``--all-games`` a Procgen preset's lists for each of the 16 games
(the preset with only ``env`` changed), ``--preset`` picks presets by name.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def agreement(games: list[str]) -> list[dict]:
    from heldout.analysis.levels import fingerprint_agreement
    from heldout.splits import DEFAULT_TEST_START

    levels = list(range(200)) + list(range(DEFAULT_TEST_START, DEFAULT_TEST_START + 1000))
    rows = []
    for game in games:
        rows.append(fingerprint_agreement(game, levels))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _preset_configs(names: list[str] | None, all_games: bool) -> list[tuple[str, object]]:
    """(preset name, config) for each level preset asked for; Procgen ones once per game with
    ``all_games``."""
    import dataclasses

    from heldout.envs.procgen import PROCGEN_GAMES
    from heldout.protocol.families import LevelFamily, family_for
    from heldout.protocol.presets import PRESETS

    out = []
    for name in names or PRESETS.names():
        config = PRESETS.get(name)
        if not isinstance(family_for(config.env), LevelFamily):
            continue
        if all_games and config.env in PROCGEN_GAMES:
            out += [(name, dataclasses.replace(config, env=game)) for game in PROCGEN_GAMES]
        else:
            out.append((name, config))
    return out


def presets(names: list[str] | None = None, all_games: bool = False) -> list[dict]:
    from heldout.analysis.levels import check_list_strongly
    from heldout.protocol.families import family_for

    rows = []
    for name, config in _preset_configs(names, all_games):
        family = family_for(config.env)
        t0 = time.perf_counter()
        split = family.split(config)
        lists, records = family.eval_lists(config, split, config.eval_episodes)
        for which, listed in lists.items():
            row = {"preset": name, "env": config.env, "mode": config.distribution_mode, "split": which}
            row.update(
                check_list_strongly(config.env, split.train.to_list(), listed, config.distribution_mode)
            )
            row["episodes"] = config.eval_episodes
            row["dropped"] = len(records[which].get("dropped", []))
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    from heldout.envs.procgen import PROCGEN_GAMES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["agreement", "presets"])
    p.add_argument("--games", default=",".join(PROCGEN_GAMES))
    p.add_argument("--preset", action="append", help="presets: only these (repeatable)")
    p.add_argument("--all-games", action="store_true", help="presets: each Procgen preset on all 16 games")
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.what == "agreement":
        rows = agreement(args.games.split(","))
    else:
        rows = presets(args.preset, args.all_games)
    from heldout.analysis.text import md_table

    print(md_table(list(rows[0]), [list(r.values()) for r in rows]))
    if args.out:
        from heldout.protocol.run_folder import write_json

        write_json(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
