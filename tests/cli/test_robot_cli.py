"""`tracegen robot ports | ping | calibrate | emulate` against the emulator (no hardware)."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from robot.arm import open_arm
from robot.calibration import ArmCalibration
from robot.emulator import KinematicServoBackend, start_emulator
from tracegen_cli.main import app

runner = CliRunner()


class HandMovedBackend(KinematicServoBackend):
    """Released servos swept by 'a person': joint i swings sinusoidally over +-amplitude[i] steps."""

    def __init__(self, amplitudes: dict[int, int], period_s: float = 0.4):
        super().__init__(amplitudes, initial_raw=2048)
        self.amplitudes, self.period_s, self.elapsed = amplitudes, period_s, 0.0

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
        for servo_id, amplitude in self.amplitudes.items():
            if not self.torque[servo_id]:
                phase = 2 * math.pi * self.elapsed / self.period_s
                self.position[servo_id] = 2048 + amplitude * math.sin(phase + servo_id)


def test_ping_prints_ids_models_positions():
    with start_emulator("so101") as emulator:
        result = runner.invoke(app, ["robot", "ping", "--robot", "so101", "--port", emulator.url])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "sts3215" in line]
    assert len(rows) == 6 and all("777" in row and "2048" in row and "ok" in row for row in rows)


def test_ping_names_a_missing_servo_and_exits_1():
    with start_emulator("so101", faults="missing@5") as emulator:
        result = runner.invoke(app, ["robot", "ping", "--port", emulator.url])
    assert result.exit_code == 1
    assert "no reply" in result.output
    assert "error: 1 of 6 servos failed: wrist_roll (id 5)" in result.output


def test_ping_unopenable_port_is_one_line():
    result = runner.invoke(app, ["robot", "ping", "--port", "/dev/no-such-port"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: cannot open serial port '/dev/no-such-port'")


def test_calibrate_records_the_swept_ranges(tmp_path):
    amplitudes = {1: 900, 2: 700, 3: 800, 4: 600, 5: 1500, 6: 400}
    out = tmp_path / "arm.json"
    with start_emulator("so101", backend=HandMovedBackend(amplitudes)) as emulator:
        args = ["robot", "calibrate", "--port", emulator.url, "--out", str(out), "--duration", "1.0", "--rate", "100"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    calibration = ArmCalibration.load(out)
    for motor in calibration.motors.values():
        amplitude = amplitudes[motor.id]
        # 2.5 periods sampled at 100 Hz: the extremes are seen to within a few percent of the swing.
        assert 2048 - amplitude <= motor.range_min <= 2048 - 0.95 * amplitude
        assert 2048 + 0.95 * amplitude <= motor.range_max <= 2048 + amplitude
        assert motor.homing_offset == 0 and motor.drive_mode == 0
    assert json.loads(out.read_text())["wrist_roll"]["id"] == 5


def test_calibrate_refuses_a_joint_that_never_moved(tmp_path):
    amplitudes = {1: 900, 2: 700, 3: 0, 4: 600, 5: 1500, 6: 400}
    with start_emulator("so101", backend=HandMovedBackend(amplitudes)) as emulator:
        args = ["robot", "calibrate", "--port", emulator.url, "--out", str(tmp_path / "a.json"), "--duration", "0.3"]
        result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "elbow_flex (0 steps)" in result.output and not (tmp_path / "a.json").exists()


def test_ports_lists_known_adapters_first(monkeypatch):
    from serial.tools import list_ports, list_ports_common

    def fake_comports():
        generic = list_ports_common.ListPortInfo("/dev/ttyS0", skip_link_detection=True)
        adapter = list_ports_common.ListPortInfo("/dev/ttyACM0", skip_link_detection=True)
        adapter.vid, adapter.pid, adapter.serial_number, adapter.description = 0x1A86, 0x55D3, "58FA1", "USB Single Serial"
        return [generic, adapter]

    monkeypatch.setattr(list_ports, "comports", fake_comports)
    result = runner.invoke(app, ["robot", "ports"])
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "/dev/" in line]
    assert "/dev/ttyACM0" in lines[0] and "1a86:55d3" in lines[0] and "CH343" in lines[0]
    assert "/dev/ttyS0" in lines[1]


def test_unknown_robot_is_a_usage_error():
    result = runner.invoke(app, ["robot", "ping", "--robot", "ur5", "--port", "loop://"])
    assert result.exit_code == 2 and "ur5" in result.output


def test_emulate_prints_a_port_that_an_arm_drives_and_stops_on_ctrl_c():
    command = [sys.executable, "-c", "from tracegen_cli.main import run; run()", "robot", "emulate", "--robot", "koch"]
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored: restore
    # the default so the child sees Ctrl-C as a terminal user's would, however the test run was started.
    restore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_ctrl_c)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("/dev/") and os.path.exists(url)
        with open_arm("koch", url, timeout_s=0.2) as arm:
            arm.set_torque(True)
            goals = [0.2, -0.1, 0.3, 0.0, 0.1, 0.05]
            arm.write_goals(goals)
            time.sleep(0.3)
            assert max(abs(a - b) for a, b in zip(arm.read_positions(), goals, strict=True)) < 2e-3
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)  # reads both pipes while it waits
        assert process.returncode == 0
        assert "emulator stopped after" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.hardware
def test_ping_a_real_arm():
    """Needs an SO-101 on the port named by TRACEGEN_ROBOT_PORT (skipped by default)."""
    port = os.environ.get("TRACEGEN_ROBOT_PORT")
    if not port:
        pytest.skip("set TRACEGEN_ROBOT_PORT to the arm's serial port")
    result = runner.invoke(app, ["robot", "ping", "--robot", os.environ.get("TRACEGEN_ROBOT", "so101"), "--port", port])
    assert result.exit_code == 0, result.output


def test_emulate_rejects_a_bad_fault_spec_in_one_line():
    result = runner.invoke(app, ["robot", "emulate", "--faults", "explode@2", "--duration", "0.1"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: fault 'explode@2' is not KIND, KIND@ID or KIND@ID*COUNT with KIND one of bad_checksum")


def test_emulate_for_a_set_duration_prints_the_pty_path():
    result = runner.invoke(app, ["robot", "emulate", "--robot", "so100", "--duration", "0.2", "--wire-baudrate", "1000000"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("/dev/")


def test_ping_scan_lists_the_ids_that_answer():
    with start_emulator("so101", models={1: 777, 2: 777, 7: 777, 9: 1060}) as emulator:
        result = runner.invoke(app, ["robot", "ping", "--port", emulator.url, "--scan", "--max-id", "10"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("│")}
    assert sorted(rows, key=int) == ["1", "2", "7", "9"]
    assert "shoulder_lift" in rows["2"] and "xl430-w250" in rows["9"] and "-" in rows["7"]


def test_ping_scan_of_a_silent_bus_is_one_error_line():
    with start_emulator("koch") as emulator:  # Dynamixel servos do not answer Feetech pings
        result = runner.invoke(app, ["robot", "ping", "--port", emulator.url, "--scan", "--max-id", "3"])
    assert result.exit_code == 1
    assert "error: no feetech servo answered" in result.output


def test_set_id_then_ping_shows_the_new_id():
    with start_emulator("so101", models={1: 777}) as emulator:
        result = runner.invoke(app, ["robot", "set-id", "wrist_roll", "--port", emulator.url])
        assert result.exit_code == 0, result.output
        assert "wrist_roll: ID 1 -> 5" in result.output
        assert list(emulator.emulator.memory) == [5]
