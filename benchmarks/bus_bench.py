"""Servo bus benchmark on the emulator: control-cycle rate, connect time, fault-recovery cost, and the
vendors' SDK on the same emulator for comparison.

A control cycle is what `tracegen execute` does every tick: one SYNC_READ of Present_Position of all six
servos, then one SYNC_WRITE of Goal_Position. `wire_baud` = 1000000 makes the emulator hold each reply
for the time its request and reply take on a real 1 Mbit/s bus (10 bits per byte), so that row
estimates a real arm; `wire_baud` = 0 measures our software stack alone (pty, Python, emulator thread).
Prints one JSON object per line. Usage::

    .venv/bin/python benchmarks/bus_bench.py [--cycles 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from robot.arm import open_arm
from robot.bus import BusConfig, MotorBus
from robot.emulator import start_emulator
from robot.errors import RobotError
from robot.protocol import dynamixel, feetech


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def control_cycle(robot: str, cycles: int, wire_baud: int) -> dict:
    """Rate of read-positions + write-goals cycles through the Arm API."""
    with start_emulator(robot, wire_baudrate=wire_baud or None) as emulator:
        started = time.perf_counter()
        arm = open_arm(robot, emulator.url)
        arm.connect()
        connect_ms = (time.perf_counter() - started) * 1e3
        arm.set_torque(True)
        goals = np.zeros(6)
        durations = []
        for index in range(cycles):
            tick = time.perf_counter()
            present = arm.read_positions()  # (6,)
            goals[:] = 0.2 * np.sin(index / 50.0)
            arm.write_goals(goals)
            durations.append(time.perf_counter() - tick)
        arm.disconnect()
        del present
    protocol = feetech if robot != "koch" else dynamixel
    read = protocol.sync_read(56 if robot != "koch" else 132, 2 if robot != "koch" else 4, list(range(1, 7)))
    reply = protocol.status_packet(1, 0, bytes(2 if robot != "koch" else 4))
    write = protocol.sync_write(42 if robot != "koch" else 116, 2 if robot != "koch" else 4,
                                {i: bytes(2 if robot != "koch" else 4) for i in range(1, 7)})
    wire_bytes = len(read) + 6 * len(reply) + len(write)
    return {
        "bench": "control_cycle", "robot": robot, "servos": 6, "wire_baud": wire_baud, "cycles": cycles,
        "rate_hz": round(cycles / sum(durations), 1),
        "cycle_ms_p50": round(_percentile(durations, 50) * 1e3, 3),
        "cycle_ms_p99": round(_percentile(durations, 99) * 1e3, 3),
        "connect_ms": round(connect_ms, 1),
        "bytes_per_cycle": wire_bytes,
        "wire_limit_hz_at_1mbps": round(1e6 / (10 * wire_bytes), 1),
    }


def fault_recovery(robot: str, kind: str, trials: int) -> dict:
    """Latency of a read that meets one corrupt/missing reply (recovered by a retry), and of a read
    that meets a persistent fault (clean error after the bounded retries)."""
    protocol = "feetech" if robot != "koch" else "dynamixel"
    config = BusConfig(timeout_s=0.02, retries=3)
    with start_emulator(robot) as emulator, MotorBus(emulator.url, protocol, config) as bus:
        recovered = []
        for _ in range(trials):
            emulator.inject(f"{kind}@3*1")
            tick = time.perf_counter()
            bus.read(3, "Present_Position")
            recovered.append(time.perf_counter() - tick)
        emulator.inject(f"{kind}@3")
        tick = time.perf_counter()
        try:
            bus.read(3, "Present_Position")
            error = "none"
        except RobotError as exc:
            error = type(exc).__name__
        failed_ms = (time.perf_counter() - tick) * 1e3
    return {
        "bench": "fault_recovery", "robot": robot, "fault": kind, "timeout_ms": config.timeout_s * 1e3,
        "retries": config.retries, "recovered_read_ms_p50": round(statistics.median(recovered) * 1e3, 2),
        "persistent_fault_error": error, "persistent_fault_ms": round(failed_ms, 1),
    }


def vendor_sdk_cycle(cycles: int) -> dict:
    """The same control cycle through feetech-servo-sdk (scservo_sdk) on the same emulator."""
    import scservo_sdk as sdk

    with start_emulator("so101") as emulator:
        port = sdk.PortHandler(emulator.url)
        port.openPort()
        port.setBaudRate(1_000_000)
        packets = sdk.PacketHandler(0)
        reader = sdk.GroupSyncRead(port, packets, 56, 2)
        for servo_id in range(1, 7):
            reader.addParam(servo_id)
        writer = sdk.GroupSyncWrite(port, packets, 42, 2)
        failures, durations = 0, []
        for _ in range(cycles):
            tick = time.perf_counter()
            failures += reader.txRxPacket() != sdk.COMM_SUCCESS
            writer.clearParam()
            for servo_id in range(1, 7):
                writer.addParam(servo_id, [0x00, 0x08])
            writer.txPacket()
            durations.append(time.perf_counter() - tick)
        port.closePort()
    return {
        "bench": "vendor_sdk_cycle", "sdk": "scservo_sdk", "robot": "so101", "cycles": cycles,
        "rate_hz": round(cycles / sum(durations), 1), "cycle_ms_p50": round(_percentile(durations, 50) * 1e3, 3),
        "failed_cycles": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000, help="control cycles per measurement")
    parser.add_argument("--fault-trials", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps({"bench": "machine", "python": platform.python_version(), "machine": platform.machine()}))
    for robot in ("so101", "koch"):
        for wire_baud in (0, 1_000_000):
            print(json.dumps(control_cycle(robot, args.cycles, wire_baud)), flush=True)
    for kind in ("bad_checksum", "truncated", "missing"):
        print(json.dumps(fault_recovery("so101", kind, args.fault_trials)), flush=True)
    print(json.dumps(vendor_sdk_cycle(args.cycles)), flush=True)


if __name__ == "__main__":
    main()
