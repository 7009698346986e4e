"""The edge deployment services in one install: Neo compilation jobs, IoT jobs and device side, simulated devices."""

from __future__ import annotations

from local_aws import devices, iot, neo


def install() -> None:
    neo.install()
    iot.install()
    devices.install()
