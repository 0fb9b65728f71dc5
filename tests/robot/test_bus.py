"""The motor bus over the emulator's pty: register access by name, bounded retries that recover from
transient faults, clean errors for persistent ones, and error bits turned into ServoError subclasses."""

import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from robot import errors
from robot.bus import PROTOCOLS, BusConfig, MotorBus, scan_status
from robot.emulator import start_emulator
from robot.errors import ProtocolError, RobotError, ServoTimeoutError, TransportError
from robot.protocol import feetech

NAMES = {3: "elbow_flex"}


@pytest.fixture(params=["so101", "koch"])
def bus_and_emulator(request):
    protocol = "feetech" if request.param == "so101" else "dynamixel"
    with start_emulator(request.param) as emulator:
        bus = MotorBus(emulator.url, protocol, BusConfig(timeout_s=0.03, retries=2), names=NAMES)
        with bus:
            yield bus, emulator


def test_registers_by_name(bus_and_emulator):
    bus, emulator = bus_and_emulator
    assert bus.read(3, "Present_Position") == 2048
    bus.write(3, "Torque_Enable", 1)
    bus.sync_write("Goal_Position", {3: 2100, 4: 1900})
    time.sleep(0.1)
    assert bus.sync_read("Present_Position", [3, 4, 5]) == {3: 2100, 4: 2048, 5: 2048}
    assert bus.motion_packets_sent == 2


@pytest.mark.parametrize("kind", ["bad_checksum", "truncated", "missing"])
def test_transient_faults_are_retried_away(bus_and_emulator, kind):
    bus, emulator = bus_and_emulator
    emulator.inject(f"{kind}@3*2")  # two bad replies, then good ones; 3 attempts allowed
    assert bus.read(3, "Present_Position") == 2048
    assert bus.retries_used == 2
    assert emulator.emulator.faults.injected == 2


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("bad_checksum", ProtocolError, "sent no valid reply"),
        ("truncated", ProtocolError, "sent a truncated reply"),
        ("missing", ServoTimeoutError, "did not answer"),
    ],
)
def test_persistent_faults_end_in_a_clean_error_after_bounded_retries(bus_and_emulator, kind, error, message):
    bus, emulator = bus_and_emulator
    emulator.inject(f"{kind}@3")
    started = time.monotonic()
    with pytest.raises(error, match=rf"servo 3 \(elbow_flex\) {message}.*\(3 attempts") as caught:
        bus.read(3, "Present_Position")
    assert isinstance(caught.value, RobotError)
    assert emulator.emulator.faults.injected == 3  # exactly 1 + retries requests reached the servo
    assert time.monotonic() - started < 1.0  # bounded: 3 x 30 ms timeouts, plus slack for a busy machine
    emulator.clear_faults()
    assert bus.read(3, "Present_Position") == 2048  # the bus is usable again


def test_garbage_before_replies_is_skipped_without_retries(bus_and_emulator):
    bus, emulator = bus_and_emulator
    emulator.inject("garbage")
    for _ in range(20):
        assert bus.sync_read("Present_Position", [1, 2, 3]) == {1: 2048, 2: 2048, 3: 2048}
    assert bus.retries_used == 0


def test_a_fault_inside_a_sync_read_retries_the_whole_read(bus_and_emulator):
    bus, emulator = bus_and_emulator
    emulator.inject("bad_checksum@2*1")
    assert bus.sync_read("Present_Position", [1, 2, 3]) == {1: 2048, 2: 2048, 3: 2048}
    assert bus.retries_used == 1


FEETECH_CONDITIONS = [
    ("overload", errors.ServoOverloadError),
    ("overheat", errors.ServoOverheatError),
    ("overcurrent", errors.ServoOverCurrentError),
    ("voltage", errors.ServoVoltageError),
    ("angle_sensor", errors.ServoAngleSensorError),
]


@pytest.mark.parametrize(("condition", "error"), FEETECH_CONDITIONS)
def test_feetech_error_bits_become_servo_errors(condition, error):
    with start_emulator("so101", faults=f"{condition}@3") as emulator, MotorBus(emulator.url, "feetech", names=NAMES) as bus:
        with pytest.raises(error, match=rf"servo 3 \(elbow_flex\) reports {condition}") as caught:
            bus.read(3, "Present_Position")
        assert isinstance(caught.value, errors.ServoError)
        assert emulator.emulator.faults.injected == 1  # error bits are real conditions: never retried
        assert bus.read(2, "Present_Position") == 2048


@pytest.mark.parametrize(
    ("condition", "error"),
    [("hardware_alert", errors.ServoHardwareAlert), ("data_range", errors.ServoInstructionError)],
)
def test_dynamixel_error_byte_becomes_servo_errors(condition, error):
    with start_emulator("koch", faults=f"{condition}@3*1") as emulator, MotorBus(emulator.url, "dynamixel", names=NAMES) as bus:
        with pytest.raises(error, match=condition):
            bus.ping(3)
        assert bus.ping(3) == 1200


def test_loop_url_and_unopenable_ports():
    with MotorBus("loop://", "feetech") as bus:  # loop:// hands back exactly the bytes written
        bus.sync_write("Goal_Position", {1: 2048, 2: 1000, 3: 3000})
        assert bus.port.read(17).hex(" ") == "ff ff fe 0d 83 2a 02 01 00 08 02 e8 03 03 b8 0b 89"
    with pytest.raises(TransportError, match="/dev/does-not-exist.*tracegen robot ports"):
        MotorBus("/dev/does-not-exist", "feetech").open()
    with pytest.raises(TransportError, match="not open"):
        MotorBus("loop://", "feetech").read(1, "ID")


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["feetech", "dynamixel"]),
    st.binary(max_size=40),
    st.integers(1, 6),
    st.binary(min_size=0, max_size=8),
    st.binary(max_size=10),
)
def test_scan_finds_the_reply_behind_any_noise(protocol_name, noise, servo_id, data, trailing):
    protocol = PROTOCOLS[protocol_name]
    reply = protocol.status_packet(servo_id, 0, data)
    stream = noise + reply + trailing
    assume(scan_status(protocol, noise, servo_id, len(data), exhausted=True)[0] is None)  # noise holds no valid reply
    # Delivered in one piece with no more to come, the reply is always found whatever the noise holds.
    status, _, _ = scan_status(protocol, stream, servo_id, len(data), exhausted=True)
    assert status is not None and status.params == data and status.error == 0


def test_scan_keeps_the_bytes_after_a_reply_for_the_next_one():
    first, second = feetech.status_packet(1, 0, b"\x01\x02"), feetech.status_packet(2, 0, b"\x03\x04")
    status, rest, rejected = scan_status(feetech, b"\x00" + first + second[:4], 1, 2)
    assert status.params == b"\x01\x02" and rest == second[:4] and rejected is None
    status, rest, _ = scan_status(feetech, rest + second[4:], 2, 2)
    assert status.params == b"\x03\x04" and rest == b""
