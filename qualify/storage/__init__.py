"""Drives of a node: which device a profile's drive is, and whether it may be written to."""

from qualify.storage.guard import DeviceUse, Refusal, WriteRefused, checked_for_writing, device_use, refusals
from qualify.storage.identity import (
                                      LOOP_SERIAL_PREFIX,
                                      BlockDevice,
                                      DriveNotFound,
                                      block_devices,
                                      mark_loop_backing_file,
                                      resolve_drive,
)

__all__ = ["LOOP_SERIAL_PREFIX", "BlockDevice", "DeviceUse", "DriveNotFound", "Refusal", "WriteRefused",
           "block_devices", "checked_for_writing", "device_use", "mark_loop_backing_file", "refusals", "resolve_drive"]
