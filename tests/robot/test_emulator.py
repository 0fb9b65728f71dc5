"""The emulator's servo side without a pty: exact replies, register semantics, faults, the backend."""

import os

import pytest
import serial

from robot.emulator import DynamixelEmulator, FeetechEmulator, KinematicServoBackend, start_emulator
from robot.emulator_faults import FaultInjector, FaultSpecError, parse_faults
from robot.errors import RobotError
from robot.protocol import dynamixel, feetech


def _feetech(faults=""):
    backend = KinematicServoBackend(range(1, 7), initial_raw=1500)
    return FeetechEmulator(dict.fromkeys(range(1, 7), 777), backend, FaultInjector(feetech, parse_faults(faults, feetech)))


def _dynamixel(faults=""):
    backend = KinematicServoBackend(range(1, 3), initial_raw=1500)
    return DynamixelEmulator({1: 1060, 2: 1200}, backend, FaultInjector(dynamixel, parse_faults(faults, dynamixel)))


def test_feetech_ping_and_read_replies_are_exact():
    emulator = _feetech()
    assert emulator.feed(bytes.fromhex("ff ff 01 02 01 fb")) == bytes.fromhex("ff ff 01 02 00 fc")
    reply = emulator.feed(bytes.fromhex("ff ff 01 04 02 38 02 be"))  # READ Present_Position
    assert reply == feetech.status_packet(1, 0, (1500).to_bytes(2, "little"))
    assert emulator.feed(feetech.read(1, 3, 2)) == feetech.status_packet(1, 0, (777).to_bytes(2, "little"))


def test_packets_split_across_reads_and_noise_between_them():
    emulator = _feetech()
    packet = feetech.ping(2)
    assert emulator.feed(b"\x00\x42" + packet[:3]) == b""
    assert emulator.feed(packet[3:]) == feetech.status_packet(2, 0)


def test_corrupt_and_foreign_packets_get_no_reply():
    emulator = _feetech()
    ping = feetech.ping(1)
    assert emulator.feed(ping[:-1] + bytes([ping[-1] ^ 0xFF])) == b""
    assert emulator.feed(feetech.ping(9)) == b""


def test_sync_write_moves_the_backend_and_sync_read_answers_in_order():
    emulator = _feetech()
    emulator.feed(feetech.sync_write(40, 1, {1: b"\x01", 2: b"\x01"}))
    emulator.feed(feetech.sync_write(42, 2, {1: (2048).to_bytes(2, "little"), 2: (1000).to_bytes(2, "little")}))
    emulator.backend.advance(1.0)
    reply = emulator.feed(feetech.sync_read(56, 2, [2, 1, 3]))
    assert reply == b"".join(
        feetech.status_packet(i, 0, v.to_bytes(2, "little")) for i, v in ((2, 1000), (1, 2048), (3, 1500))
    )


def test_feetech_homing_offset_shifts_present_and_goal():
    emulator = _feetech()
    homing = feetech.REGISTERS["Homing_Offset"]
    emulator.feed(feetech.write(1, homing.address, (100 | 0x800).to_bytes(2, "little")))
    assert emulator.get(1, "Homing_Offset") == -100
    reply = emulator.feed(feetech.read(1, 56, 2))
    assert feetech.parse_status(reply, 1, 2).params == (1600).to_bytes(2, "little")  # present = actual - offset


def test_dynamixel_ping_eeprom_lock_and_range_errors():
    emulator = _dynamixel()
    assert dynamixel.parse_status(emulator.feed(dynamixel.ping(2)), 2, 3).params[:2] == (1200).to_bytes(2, "little")
    emulator.feed(dynamixel.write(1, 64, b"\x01"))  # torque on
    assert dynamixel.parse_status(emulator.feed(dynamixel.write(1, 11, b"\x01")), 1, 0).error == 7  # EEPROM locked
    assert dynamixel.parse_status(emulator.feed(dynamixel.read(1, 690, 20)), 1, 0).error == 4  # out of range


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ("missing", lambda reply, good: reply == b""),
        ("truncated", lambda reply, good: 0 < len(reply) < len(good) and good.startswith(reply)),
        ("bad_checksum", lambda reply, good: reply[:-1] == good[:-1] and reply[-1] != good[-1]),
        ("garbage", lambda reply, good: reply.endswith(good) and len(reply) > len(good)),
        ("overload", lambda reply, good: feetech.parse_status(reply, 1, 0).error == 0x20),
    ],
)
def test_each_fault_damages_exactly_the_counted_replies(spec, check):
    emulator = _feetech(f"{spec}@1*2")
    good = feetech.status_packet(1, 0)
    assert check(emulator.feed(feetech.ping(1)), good)
    assert emulator.feed(feetech.ping(2)) == feetech.status_packet(2, 0)  # other servos are unaffected
    assert check(emulator.feed(feetech.ping(1)), good)
    assert emulator.feed(feetech.ping(1)) == good  # count exhausted
    assert emulator.faults.injected == 2


def test_fault_specs_are_validated():
    assert [(f.kind, f.servo_id, f.count) for f in parse_faults("missing@3*2, overheat", feetech)] == [
        ("missing", 3, 2),
        ("overheat", None, None),
    ]
    assert parse_faults("data-range@2", dynamixel)[0].kind == "data_range"
    with pytest.raises(FaultSpecError, match="'explode'"):
        parse_faults("explode", feetech)
    with pytest.raises(FaultSpecError):
        parse_faults("data_range", feetech)  # a Dynamixel condition on a Feetech bus


def test_kinematic_backend_is_velocity_limited_and_respects_torque():
    backend = KinematicServoBackend([1], initial_raw=0, max_speed=1000.0)
    backend.set_goal_raw({1: 500})
    backend.advance(1.0)
    assert backend.present_raw() == {1: 0}  # torque off: no motion
    backend.set_torque(1, True)
    backend.advance(0.2)
    assert backend.present_raw() == {1: 200}
    backend.advance(1.0)
    assert backend.present_raw() == {1: 500}


def test_pty_handle_serves_plain_pyserial_and_closes():
    with start_emulator("so101") as handle:
        assert os.path.exists(handle.url)
        port = serial.serial_for_url(handle.url, baudrate=1_000_000, timeout=0.5)
        port.write(feetech.ping(4))
        assert port.read(6) == feetech.status_packet(4, 0)
        port.close()
    assert not handle._thread.is_alive()


def test_unknown_robot_is_refused():
    with pytest.raises(RobotError, match="cannot emulate robot 'ur5'"):
        start_emulator("ur5")


def test_goals_beyond_the_position_limits():
    emulator = _feetech()
    emulator.feed(feetech.write(1, 11, (3000).to_bytes(2, "little")))  # Max_Position_Limit = 3000
    emulator.feed(feetech.write(1, 40, b"\x01"))
    emulator.feed(feetech.write(1, 42, (3500).to_bytes(2, "little")))
    assert emulator.backend.goal[1] == 3000  # STS clamps
    dxl = _dynamixel()
    dxl.feed(dynamixel.write(1, 48, (3000).to_bytes(4, "little")))  # Max_Position_Limit (torque off)
    reply = dxl.feed(dynamixel.write(1, 116, (3500).to_bytes(4, "little")))
    assert dynamixel.parse_status(reply, 1, 0).error == 6  # X-series: data limit error, goal unchanged
    assert dxl.backend.goal[1] == 1500
