"""The vendors' own SDKs (feetech-servo-sdk `scservo_sdk`, ROBOTIS `dynamixel_sdk`) talk to our emulator
over its pty: proof that the emulator speaks the servos' bytes, not just our own encoding."""

import time

import pytest

from robot.emulator import KinematicServoBackend, start_emulator

scservo_sdk = pytest.importorskip("scservo_sdk")
dynamixel_sdk = pytest.importorskip("dynamixel_sdk")


def _retry(call, attempts=3):
    """The SDKs time out after ~34 ms; on a loaded CI machine a thread may be late once."""
    for _ in range(attempts - 1):
        result = call()
        if result[-2] == 0:  # COMM_SUCCESS
            return result
        time.sleep(0.01)
    return call()


def test_scservo_sdk_pings_reads_and_moves_the_emulated_so101():
    backend = KinematicServoBackend(range(1, 7), initial_raw=1234)
    with start_emulator("so101", backend=backend) as emulator:
        port = scservo_sdk.PortHandler(emulator.url)
        assert port.openPort() and port.setBaudRate(1_000_000)
        packets = scservo_sdk.PacketHandler(0)  # STS: little-endian
        try:
            for servo_id in range(1, 7):
                model, result, error = _retry(lambda i=servo_id: packets.ping(port, i))
                assert (model, result, error) == (777, 0, 0)
            position, result, error = _retry(lambda: packets.read2ByteTxRx(port, 3, 56))
            assert (position, result, error) == (1234, 0, 0)

            assert packets.write1ByteTxRx(port, 3, 40, 1)[0] == 0  # torque on
            group = scservo_sdk.GroupSyncWrite(port, packets, 42, 2)
            group.addParam(3, [2000 & 0xFF, 2000 >> 8])
            assert group.txPacket() == 0
            time.sleep(0.5)  # 766 steps at 3000 steps/s
            reader = scservo_sdk.GroupSyncRead(port, packets, 56, 2)
            for servo_id in (2, 3):
                reader.addParam(servo_id)
            assert _retry(lambda: (None, reader.txRxPacket(), None))[1] == 0
            assert reader.getData(3, 56, 2) == 2000 and reader.getData(2, 56, 2) == 1234
        finally:
            port.closePort()


def test_dynamixel_sdk_pings_and_reads_the_emulated_koch():
    backend = KinematicServoBackend(range(1, 7), initial_raw=3000)
    with start_emulator("koch", backend=backend) as emulator:
        port = dynamixel_sdk.PortHandler(emulator.url)
        assert port.openPort() and port.setBaudRate(1_000_000)
        packets = dynamixel_sdk.PacketHandler(2.0)
        try:
            models = [_retry(lambda i=i: packets.ping(port, i))[0] for i in range(1, 7)]
            assert models == [1060, 1060, 1200, 1200, 1200, 1200]
            position, result, error = _retry(lambda: packets.read4ByteTxRx(port, 5, 132))
            assert (position, result, error) == (3000, 0, 0)
            # 0x00FDFFFF is sent as FF FF FD 00: byte stuffing both ways (SDK -> emulator -> SDK).
            assert _retry(lambda: (None, *packets.write4ByteTxRx(port, 5, 112, 0x00FDFFFF)))[1:] == (0, 0)
            assert emulator.emulator.get(5, "Profile_Velocity") == 0x00FDFFFF
            assert _retry(lambda: packets.read4ByteTxRx(port, 5, 112)) == (0x00FDFFFF, 0, 0)
            reader = dynamixel_sdk.GroupSyncRead(port, packets, 132, 4)
            for servo_id in (1, 6):
                reader.addParam(servo_id)
            assert _retry(lambda: (None, reader.txRxPacket(), None))[1] == 0
            assert reader.getData(1, 132, 4) == 3000 and reader.getData(6, 132, 4) == 3000
        finally:
            port.closePort()
