"""Wrappers of the load tools a check runs on the node (command line, run, parse in one place)."""
