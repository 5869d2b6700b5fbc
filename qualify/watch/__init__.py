"""The freeze watch: heartbeat, independent probe and kernel-log events of a node during a run."""

from qualify.watch.watcher import Watcher, start_watch

__all__ = ["Watcher", "start_watch"]
