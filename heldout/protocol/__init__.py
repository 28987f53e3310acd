"""The protocol: train on the train split, evaluate zero-shot on every split, record a run folder.

* :mod:`~heldout.protocol.config`: :class:`TrainConfig`, the run as plain data;
  :mod:`~heldout.protocol.presets`: named configs; :mod:`~heldout.protocol.validate`: the whole check;
* :mod:`~heldout.protocol.families`: what each kind of env answers (split, lists, envs, evaluation);
* :mod:`~heldout.protocol.evaluate`: one episode per listed level or context;
* :mod:`~heldout.protocol.run`: ``heldout train``; :mod:`~heldout.protocol.reevaluate`: ``heldout eval``;
  :mod:`~heldout.protocol.saliency`: ``heldout saliency``;
* :mod:`~heldout.protocol.run_folder`: atomic files, reading a run folder back;
  :mod:`~heldout.protocol.tables`: the train/test table; :mod:`~heldout.protocol.scores`: normalised
  scores and the gap; :mod:`~heldout.protocol.plugins`: ``--import`` of user modules.
"""
