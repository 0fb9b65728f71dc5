"""Feetech STS and Dynamixel 2.0 byte functions: golden packets from ROBOT.md, round trips, rejects."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from robot.errors import ProtocolError
from robot.protocol import dynamixel, feetech
from robot.protocol.tables import STS_REGISTERS, XSERIES_REGISTERS, decode_value, encode_value

GOLDEN = [
    (feetech.ping(1), "ff ff 01 02 01 fb"),
    (feetech.read(1, 56, 2), "ff ff 01 04 02 38 02 be"),
    (feetech.write(1, 42, (2048).to_bytes(2, "little")), "ff ff 01 05 03 2a 00 08 c4"),
    (
        feetech.sync_write(42, 2, {i: v.to_bytes(2, "little") for i, v in {1: 2048, 2: 1000, 3: 3000}.items()}),
        "ff ff fe 0d 83 2a 02 01 00 08 02 e8 03 03 b8 0b 89",
    ),
    (dynamixel.ping(1), "ff ff fd 00 01 03 00 01 19 4e"),
    (dynamixel.read(1, 132, 4), "ff ff fd 00 01 07 00 02 84 00 04 00 1d 15"),
    (dynamixel.write(1, 64, b"\x01"), "ff ff fd 00 01 06 00 03 40 00 01 db 66"),
]


@pytest.mark.parametrize(("packet", "expected"), GOLDEN)
def test_golden_packets_are_byte_exact(packet, expected):
    assert packet.hex(" ") == expected


def test_golden_packets_through_the_register_table():
    goal = STS_REGISTERS["Goal_Position"]
    assert feetech.write(1, goal.address, encode_value(goal, 2048)).hex(" ") == "ff ff 01 05 03 2a 00 08 c4"
    present = XSERIES_REGISTERS["Present_Position"]
    assert dynamixel.read(1, present.address, present.size).hex(" ") == "ff ff fd 00 01 07 00 02 84 00 04 00 1d 15"


def test_crc16_check_value():
    # CRC-16/BUYPASS (poly 0x8005, init 0, no reflection): the catalogued check value of "123456789".
    assert dynamixel.crc16(b"123456789") == 0xFEE8


def test_sign_magnitude_per_register():
    assert encode_value(STS_REGISTERS["Goal_Position"], -5) == bytes([5, 0x80])  # sign in bit 15
    assert encode_value(STS_REGISTERS["Homing_Offset"], -5) == bytes([5, 0x08])  # sign in bit 11
    assert decode_value(STS_REGISTERS["Present_Load"], bytes([0x2C, 0x05])) == -300  # sign in bit 10
    assert decode_value(XSERIES_REGISTERS["Present_Position"], b"\xff\xff\xff\xff") == -1  # two's complement
    with pytest.raises(ValueError):
        encode_value(STS_REGISTERS["Homing_Offset"], 2048)


ALL_REGISTERS = list(STS_REGISTERS.values()) + list(XSERIES_REGISTERS.values())


@given(st.sampled_from(ALL_REGISTERS), st.integers(-(2**31), 2**32))
def test_register_value_round_trip(register, value):
    try:
        data = encode_value(register, value)
    except ValueError:
        return  # out of range for this register: refusing is the right answer
    assert len(data) == register.size
    assert decode_value(register, data) == value


@given(st.binary(max_size=64))
def test_stuffing_round_trip_and_no_bare_header(body):
    stuffed = dynamixel.stuff(body)
    assert dynamixel.unstuff(stuffed) == body
    # Every FF FF FD in the stuffed body is followed by the stuffing byte FD.
    index = stuffed.find(b"\xff\xff\xfd")
    while index >= 0:
        assert stuffed[index + 3 : index + 4] == b"\xfd"
        index = stuffed.find(b"\xff\xff\xfd", index + 4)


def test_stuffing_example_counts_in_length():
    packet = dynamixel.write(1, 116, b"\xff\xff\xfd\x00")
    assert b"\xff\xff\xfd\xfd\x00" in packet
    assert int.from_bytes(packet[5:7], "little") == len(packet) - 7
    assert dynamixel.parse_instruction(packet).params == (116).to_bytes(2, "little") + b"\xff\xff\xfd\x00"


@given(st.integers(0, 253), st.integers(0, 255), st.binary(max_size=40))
def test_feetech_status_round_trip(servo_id, error, params):
    status = feetech.parse_status(feetech.status_packet(servo_id, error, params), servo_id, len(params))
    assert (status.servo_id, status.error, status.params) == (servo_id, error, params)


@given(st.integers(0, 252), st.integers(0, 255), st.binary(max_size=40))
def test_dynamixel_status_round_trip(servo_id, error, params):
    status = dynamixel.parse_status(dynamixel.status_packet(servo_id, error, params), servo_id, len(params))
    assert (status.servo_id, status.error, status.params) == (servo_id, error, params)


@given(st.integers(1, 252), st.integers(0, 20), st.integers(0, 3), st.binary(min_size=1, max_size=200))
def test_dynamixel_crc_catches_any_single_bit_flip(servo_id, byte_index, bit, params):
    packet = bytearray(dynamixel.status_packet(servo_id, 0, params))
    index = 7 + byte_index % (len(packet) - 9)  # inside the payload
    packet[index] ^= 1 << bit
    with pytest.raises(ProtocolError):
        dynamixel.parse_status(bytes(packet), servo_id, len(params))


@pytest.mark.parametrize("protocol", [feetech, dynamixel])
def test_status_rejects_checksum_length_and_id(protocol):
    good = protocol.status_packet(3, 0, b"\x00\x08")
    with pytest.raises(ProtocolError, match="checksum|CRC"):
        protocol.parse_status(good[:-1] + bytes([good[-1] ^ 1]), 3, 2)
    with pytest.raises(ProtocolError):
        protocol.parse_status(good[:-2], 3, 2)
    with pytest.raises(ProtocolError, match="expected servo 4"):
        protocol.parse_status(good, 4, 2)
    with pytest.raises(ProtocolError, match="expected 4"):
        protocol.parse_status(good, 3, 4)


@pytest.mark.parametrize("protocol", [feetech, dynamixel])
def test_find_frame_skips_garbage_and_waits_for_the_rest(protocol):
    packet = protocol.status_packet(2, 0, b"\x10\x20")
    stream = b"\x00\x13\x37" + packet
    assert protocol.find_frame(stream) == (3, 3 + len(packet))
    start, end = protocol.find_frame(stream[:-1])
    assert (start, end) == (3, None)


def test_sync_instructions_parse_back():
    data = {1: b"\x00\x08", 5: b"\xe8\x03"}
    for protocol in (feetech, dynamixel):
        address, entries = protocol.parse_sync_write(protocol.parse_instruction(protocol.sync_write(42, 2, data)).params)
        assert (address, entries) == (42, data)
        assert protocol.parse_sync_read(protocol.parse_instruction(protocol.sync_read(56, 2, [1, 2, 6])).params) == (56, 2, [1, 2, 6])


def test_error_descriptions():
    assert feetech.describe_error(0x21) == ["voltage", "overload"]
    assert dynamixel.describe_error(0x80 | 4) == ["hardware_alert", "data_range"]
