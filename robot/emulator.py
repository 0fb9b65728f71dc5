"""A byte-exact servo-bus emulator on a pseudo-terminal: SO-100/SO-101 (Feetech STS) and Koch
(Dynamixel 2.0) arms that any program can open, including the vendors' own SDKs.

The emulator keeps a register memory per servo, parses instruction packets, answers with status
packets, and forwards goals and torque to a `ServoBackend` (what actually moves: simple kinematic
servos by default, a MuJoCo arm in `robot/sim/`). Faults (`robot/emulator_faults.py`) corrupt,
truncate, drop or prefix replies, or set error bits.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty

from robot.emulator_backend import KinematicServoBackend, ServoBackend
from robot.emulator_faults import Fault, FaultInjector, parse_faults
from robot.errors import ProtocolError, RobotError
from robot.protocol import dynamixel, feetech
from robot.protocol.common import PING, READ, SYNC_READ, SYNC_WRITE, WRITE, InstructionPacket
from robot.protocol.tables import MODEL_NUMBERS, Register, decode_value, encode_value

log = logging.getLogger(__name__)

__all__ = [
    "DynamixelEmulator", "EmulatorHandle", "FeetechEmulator", "KinematicServoBackend", "ServoBackend",
    "start_emulator",
]

# Emulated robots: protocol and the servo model at each ID (IDs 1-6, shoulder_pan .. gripper).
EMULATED_ROBOTS: dict[str, tuple[str, dict[int, int]]] = {
    "so101": ("feetech", dict.fromkeys(range(1, 7), MODEL_NUMBERS["sts3215"])),
    "so100": ("feetech", dict.fromkeys(range(1, 7), MODEL_NUMBERS["sts3215"])),
    "koch": ("dynamixel", {1: 1060, 2: 1060, 3: 1200, 4: 1200, 5: 1200, 6: 1200}),
}
STEPS_PER_TURN = 4096


class _ServoBusEmulator:
    """Protocol-independent core: packet framing, dispatch, register memory, faults."""

    protocol = feetech
    memory_size = 256

    def __init__(self, models: dict[int, int], backend: ServoBackend, faults: FaultInjector | None = None):
        self.models = dict(models)
        self.backend = backend
        self.faults = faults or FaultInjector(self.protocol)
        self.memory = {servo_id: self._factory_memory(servo_id, model) for servo_id, model in models.items()}
        self.wiring = {servo_id: servo_id for servo_id in models}  # bus ID -> the backend's servo id
        self.instructions_received = 0
        self.reply_delay_s = 0.0  # the servos' Return_Delay_Time summed over the last feed's replies
        self._buffer = b""
        self._last_packet_time = time.monotonic()

    # -- register memory -------------------------------------------------------------------------
    def _factory_memory(self, servo_id: int, model: int) -> bytearray:
        raise NotImplementedError

    def _set(self, servo_id: int, name: str, value: int) -> None:
        self._store(self.memory[servo_id], name, value)

    def _store(self, memory: bytearray, name: str, value: int) -> None:
        register = self.protocol.REGISTERS[name]
        memory[register.address : register.address + register.size] = encode_value(register, value)

    def _fresh_memory(self, values: tuple[tuple[str, int], ...]) -> bytearray:
        memory = bytearray(self.memory_size)
        for name, value in values:
            self._store(memory, name, value)
        return memory

    def get(self, servo_id: int, name: str) -> int:
        """Decoded value of one register of one emulated servo."""
        register: Register = self.protocol.REGISTERS[name]
        return decode_value(register, bytes(self.memory[servo_id][register.address : register.address + register.size]))

    def _refresh_present(self) -> None:
        raise NotImplementedError

    def _after_write(self, servo_id: int, address: int, size: int) -> None:
        raise NotImplementedError

    def _touches(self, name: str, address: int, size: int) -> bool:
        register = self.protocol.REGISTERS[name]
        return address < register.address + register.size and register.address < address + size

    # -- packets ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the host; return the bytes the servos send back."""
        self._buffer += data
        self.reply_delay_s = 0.0
        replies = b""
        while True:
            start, end = self.protocol.find_frame(self._buffer)
            self._buffer = self._buffer[start:]
            if end is None:
                return replies
            frame, self._buffer = self._buffer[: end - start], self._buffer[end - start :]
            try:
                packet = self.protocol.parse_instruction(frame)
            except ProtocolError as exc:  # a real servo ignores a corrupt packet
                log.debug("emulator ignored a packet: %s", exc)
                continue
            self.instructions_received += 1
            self._last_packet_time = time.monotonic()
            replies += self._dispatch(packet)

    def _reply(self, servo_id: int, params: bytes = b"", error: int = 0) -> bytes:
        if servo_id in self.memory:  # (a servo that just took a new ID still answers with the old one)
            self.reply_delay_s += self.get(servo_id, "Return_Delay_Time") * 2e-6  # units of 2 us (factory 250)
        error |= self.faults.error_byte(servo_id)
        return self.faults.damage(servo_id, self.protocol.status_packet(servo_id, error, params))

    def _dispatch(self, packet: InstructionPacket) -> bytes:
        servo_id, code, params = packet.servo_id, packet.instruction, packet.params
        if code == SYNC_WRITE:
            address, entries = self.protocol.parse_sync_write(params)
            for target, data in entries.items():
                if target in self.memory:
                    self._write(target, address, data)
            return b""
        if code == SYNC_READ:
            address, size, targets = self.protocol.parse_sync_read(params)
            self._refresh_present()
            return b"".join(self._read_reply(t, address, size) for t in targets if t in self.memory)
        if servo_id not in self.memory:
            return b""  # nobody at that ID (broadcast PING/READ is not emulated)
        if code == PING:
            return self._reply(servo_id, self._ping_params(servo_id))
        if code == READ:
            address, size = self.protocol.decode_read_params(params)
            self._refresh_present()
            return self._read_reply(servo_id, address, size)
        if code == WRITE:
            address, data = self.protocol.decode_write_params(params)
            error = self._write(servo_id, address, data)
            return self._reply(servo_id, b"", error)
        return self._reply(servo_id, b"", self._unsupported_error())

    def _read_reply(self, servo_id: int, address: int, size: int) -> bytes:
        if address + size > self.memory_size:
            return self._reply(servo_id, b"", self._range_error())
        return self._reply(servo_id, bytes(self.memory[servo_id][address : address + size]))

    def _write(self, servo_id: int, address: int, data: bytes) -> int:
        if address + len(data) > self.memory_size:
            return self._range_error()
        error = self._write_error(servo_id, address, data)
        if not error:
            self.memory[servo_id][address : address + len(data)] = data
            self._after_write(servo_id, address, len(data))
            if self._touches("ID", address, len(data)):
                self._change_id(servo_id)
        return error

    def _change_id(self, old: int) -> None:
        """A written ID register takes effect at once: the servo answers to its new ID from now on."""
        new = self.get(old, "ID")
        if new == old:
            return
        if new in self.memory or not 0 <= new <= self.protocol.MAX_ID:
            log.warning("servo %d: new ID %d clashes or is out of range; keeping %d", old, new, old)
            self._set(old, "ID", old)
            return
        for table in (self.memory, self.models, self.wiring):
            table[new] = table.pop(old)
        log.info("servo %d now answers to ID %d", old, new)

    def _ping_params(self, servo_id: int) -> bytes:
        return b""

    def _write_error(self, servo_id: int, address: int, data: bytes) -> int:
        return 0

    def _range_error(self) -> int:
        return 0

    def _unsupported_error(self) -> int:
        return 0

    def tick(self) -> None:
        """Called by the serving loop between packets (watchdogs)."""


class FeetechEmulator(_ServoBusEmulator):
    """Feetech STS servos (STS3215): little-endian, sign-magnitude, `Present = actual - Homing_Offset`."""

    protocol = feetech
    memory_size = 256

    def _factory_memory(self, servo_id: int, model: int) -> bytearray:
        present = self.backend.present_raw().get(servo_id, 2048)
        return self._fresh_memory((
            ("Firmware_Major_Version", 3), ("Firmware_Minor_Version", 10), ("Model_Number", model),
            ("ID", servo_id), ("Baud_Rate", 0), ("Return_Delay_Time", 250), ("Min_Position_Limit", 0),
            ("Max_Position_Limit", 4095), ("Max_Torque_Limit", 1000), ("P_Coefficient", 32),
            ("Torque_Limit", 1000), ("Lock", 1), ("Goal_Position", present), ("Present_Voltage", 120),
            ("Present_Temperature", 30),
        ))

    def _refresh_present(self) -> None:
        present = self.backend.present_raw()
        loads = getattr(self.backend, "present_load", dict)()
        for servo_id in self.memory:
            offset = self.get(servo_id, "Homing_Offset")
            actual = present[self.wiring[servo_id]]
            self._set(servo_id, "Present_Position", (actual - offset) % STEPS_PER_TURN)
            load = max(-1.0, min(1.0, loads.get(self.wiring[servo_id], 0.0)))
            self._set(servo_id, "Present_Load", int(round(load * 1000)))
            moving = abs(actual - offset - self.get(servo_id, "Goal_Position")) > 2
            self._set(servo_id, "Moving", int(moving and self.get(servo_id, "Torque_Enable") == 1))

    def _after_write(self, servo_id: int, address: int, size: int) -> None:
        if self._touches("Torque_Enable", address, size):
            self.backend.set_torque(self.wiring[servo_id], self.get(servo_id, "Torque_Enable") == 1)
        if self._touches("Goal_Position", address, size):  # STS clamps goals to the position limits
            low, high = self.get(servo_id, "Min_Position_Limit"), self.get(servo_id, "Max_Position_Limit")
            goal = min(max(self.get(servo_id, "Goal_Position"), low), high) if high > low else self.get(servo_id, "Goal_Position")
            self.backend.set_goal_raw({self.wiring[servo_id]: (goal + self.get(servo_id, "Homing_Offset")) % STEPS_PER_TURN})


class DynamixelEmulator(_ServoBusEmulator):
    """Dynamixel X-series servos (Protocol 2.0): EEPROM locked while torque is on, Bus_Watchdog,
    `Present = actual + Homing_Offset`."""

    protocol = dynamixel
    memory_size = 700
    EEPROM_END = 64  # addresses below Torque_Enable are EEPROM: writable only with torque off
    WATCHDOG_TICK_S = 0.020

    def _factory_memory(self, servo_id: int, model: int) -> bytearray:
        present = self.backend.present_raw().get(servo_id, 2048)
        return self._fresh_memory((
            ("Model_Number", model), ("Firmware_Version", 45), ("ID", servo_id), ("Baud_Rate", 3),
            ("Return_Delay_Time", 250), ("Operating_Mode", 3), ("Max_Position_Limit", 4095),
            ("Min_Position_Limit", 0), ("Status_Return_Level", 2), ("Goal_Position", present),
            ("Present_Input_Voltage", 120), ("Present_Temperature", 30),
        ))

    def _ping_params(self, servo_id: int) -> bytes:
        return self.models[servo_id].to_bytes(2, "little") + bytes([self.get(servo_id, "Firmware_Version")])

    def _refresh_present(self) -> None:
        present = self.backend.present_raw()
        loads = getattr(self.backend, "present_load", dict)()
        for servo_id in self.memory:
            position = present[self.wiring[servo_id]] + self.get(servo_id, "Homing_Offset")
            self._set(servo_id, "Present_Position", position)
            self._set(servo_id, "Present_Load", int(round(max(-1.0, min(1.0, loads.get(self.wiring[servo_id], 0.0))) * 1000)))
            moving = abs(position - self.get(servo_id, "Goal_Position")) > 2
            self._set(servo_id, "Moving", int(moving and self.get(servo_id, "Torque_Enable") == 1))

    def _write_error(self, servo_id: int, address: int, data: bytes) -> int:
        if address < self.EEPROM_END and self.get(servo_id, "Torque_Enable"):
            return 7  # access error: EEPROM is locked while torque is on
        goal = self.protocol.REGISTERS["Goal_Position"]
        if self._touches("Goal_Position", address, len(data)):
            if self.get(servo_id, "Bus_Watchdog") < 0:
                return 4  # data range error: the watchdog fired; host must write Bus_Watchdog = 0
            if address == goal.address and len(data) >= goal.size:
                value = decode_value(goal, data[: goal.size])
                low, high = self.get(servo_id, "Min_Position_Limit"), self.get(servo_id, "Max_Position_Limit")
                if self.get(servo_id, "Operating_Mode") == 3 and not low <= value <= high:
                    return 6  # data limit error: position mode refuses goals beyond the limits
        return 0

    def _range_error(self) -> int:
        return 4

    def _unsupported_error(self) -> int:
        return 2

    def _after_write(self, servo_id: int, address: int, size: int) -> None:
        if self._touches("Torque_Enable", address, size):
            self.backend.set_torque(self.wiring[servo_id], self.get(servo_id, "Torque_Enable") == 1)
        if self._touches("Goal_Position", address, size):
            goal = self.get(servo_id, "Goal_Position") - self.get(servo_id, "Homing_Offset")
            self.backend.set_goal_raw({self.wiring[servo_id]: goal})

    def tick(self) -> None:
        """Bus watchdog: a servo with Bus_Watchdog = N > 0 that hears nothing for N x 20 ms stops where
        it is and sets Bus_Watchdog to -1 (goal writes then fail until the host writes 0)."""
        silent_s = time.monotonic() - self._last_packet_time
        present = None
        for servo_id in self.memory:
            period = self.get(servo_id, "Bus_Watchdog")
            if period > 0 and silent_s > period * self.WATCHDOG_TICK_S:
                present = present or self.backend.present_raw()
                actual = present[self.wiring[servo_id]]
                self.backend.set_goal_raw({self.wiring[servo_id]: actual})
                self._set(servo_id, "Goal_Position", actual + self.get(servo_id, "Homing_Offset"))
                self._set(servo_id, "Bus_Watchdog", -1)
                log.info("servo %d: bus watchdog expired after %.0f ms of silence; stopped", servo_id, silent_s * 1e3)


class EmulatorHandle:
    """A running emulator: `url` is the pty device path to open; `close()` stops it."""

    def __init__(self, emulator: _ServoBusEmulator, robot: str, wire_baudrate: int | None = None):
        self.emulator = emulator
        self.wire_baudrate = wire_baudrate
        self.robot = robot
        self.backend = emulator.backend
        self.lock = threading.Lock()  # held while a packet is served; take it to inspect state
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.url = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"emulator-{robot}", daemon=True)
        self._thread.start()

    def inject(self, fault: Fault | str) -> None:
        """Activate a fault while running (a Fault or a spec like `missing@3*2`)."""
        self.emulator.faults.add(fault)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        self.emulator.faults.clear()

    def _serve(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.005)
            with self.lock:
                now = time.monotonic()
                self.backend.advance(now - last)
                last = now
                self.emulator.tick()
                if not ready:
                    continue
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    continue
                reply = self.emulator.feed(data)
            if reply:
                self._send(data, reply)

    def _send(self, request: bytes, reply: bytes) -> None:
        if self.wire_baudrate:  # a real bus: 10 bits per byte for request and reply, plus the return delay
            time.sleep((len(request) + len(reply)) * 10.0 / self.wire_baudrate + self.emulator.reply_delay_s)
        try:
            os.write(self._master, reply)
        except OSError as exc:  # nobody holds the port any more: the reply is lost, as on a real bus
            log.debug("emulator reply dropped: %s", exc)

    def close(self) -> None:
        """Stop serving and release the pseudo-terminal."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._drain()
        for fd in (self._master, self._slave):
            os.close(fd)

    def _drain(self) -> None:
        """Act on the bytes the host wrote before the emulator stopped (a disconnect's torque-off write):
        on a real bus they are on the wire already and the servos obey them. Replies go nowhere."""
        while select.select([self._master], [], [], 0)[0]:
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.emulator.feed(data)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def start_emulator(
    robot: str = "so101",
    backend: ServoBackend | None = None,
    faults: str | list[Fault] | None = None,
    seed: int = 0,
    models: dict[int, int] | None = None,
    wire_baudrate: int | None = None,
) -> EmulatorHandle:
    """Start a virtual arm on a pseudo-terminal, served by a background thread.

    Args:
        robot: "so101", "so100" (Feetech STS3215 x 6) or "koch" (Dynamixel X-series x 6).
        backend: what moves behind the servos; default `KinematicServoBackend` at raw 2048.
        faults: a fault spec string (`robot/emulator_faults.py`) or a list of Fault.
        seed: seed of the garbage-byte generator.
        models: servo id -> model number, replacing the robot's servos (to emulate a miswired arm).
        wire_baudrate: when set, each reply waits the time its request and itself take on a real bus
            at this speed (10 bits per byte) plus the servos' Return_Delay_Time, so loop rates
            measured on the emulator are honest.

    Returns:
        A handle whose `url` any serial client opens (our Arm, pyserial, the vendors' SDKs).
    """
    if robot not in EMULATED_ROBOTS:
        raise RobotError(f"cannot emulate robot {robot!r}; use one of {sorted(EMULATED_ROBOTS)}")
    protocol_name, robot_models = EMULATED_ROBOTS[robot]
    models = dict(models) if models is not None else robot_models
    protocol = feetech if protocol_name == "feetech" else dynamixel
    backend = backend if backend is not None else KinematicServoBackend(models)
    fault_list = parse_faults(faults, protocol) if isinstance(faults, str) or faults is None else list(faults)
    injector = FaultInjector(protocol, fault_list, seed=seed)
    cls = FeetechEmulator if protocol is feetech else DynamixelEmulator
    return EmulatorHandle(cls(models, backend, injector), robot, wire_baudrate)
