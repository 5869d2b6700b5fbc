"""The qualification checks: one pytest module per check, run through qualify.plugin.

A check is a function `check_<name>(node, profile, findings, ...)`: it reads the node, notes what it
saw, calls `findings.problem(...)` for what fails, and `findings.skip(...)` when it cannot apply.
"""
