"""Experiments: configs, the train -> evaluate protocol, run folders, CLIs and reports."""
