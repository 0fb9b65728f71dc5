"""Serial port discovery: which USB serial devices are present and which look like servo adapters."""

from __future__ import annotations

from dataclasses import dataclass

# USB-serial chips used by servo bus adapters: (vid, pid) -> adapter description.
KNOWN_ADAPTERS: dict[tuple[int, int], str] = {
    (0x1A86, 0x55D3): "CH343 (Waveshare/Feetech bus servo adapter, SO-100/SO-101)",
    (0x1A86, 0x7523): "CH340 (Feetech FE-URT-1 / generic servo adapter)",
    (0x1A86, 0x55D4): "CH9102 (servo adapter)",
    (0x0403, 0x6014): "FTDI FT232H (ROBOTIS U2D2, Dynamixel)",
    (0x0403, 0x6001): "FTDI FT232R (USB2Dynamixel / generic)",
    (0x10C4, 0xEA60): "CP210x (generic USB-serial)",
}


@dataclass(frozen=True)
class PortInfo:
    """One serial port.

    Attributes:
        device: the path to open (`/dev/ttyACM0`, `COM3`).
        description: the OS's description of the device.
        vid_pid: "vvvv:pppp" in hex, or "" for non-USB ports.
        serial_number: the USB serial number, or "".
        adapter: a known servo-adapter chip name, or "" when unknown.
    """

    device: str
    description: str
    vid_pid: str
    serial_number: str
    adapter: str


def list_serial_ports() -> list[PortInfo]:
    """Serial ports present on this machine, likely servo adapters first, then by device path."""
    from serial.tools import list_ports

    ports = []
    for info in list_ports.comports():
        has_usb_ids = info.vid is not None and info.pid is not None
        vid_pid = f"{info.vid:04x}:{info.pid:04x}" if has_usb_ids else ""
        adapter = KNOWN_ADAPTERS.get((info.vid, info.pid), "") if has_usb_ids else ""
        description = info.description if info.description and info.description != "n/a" else ""
        ports.append(PortInfo(info.device, description, vid_pid, info.serial_number or "", adapter))
    return sorted(ports, key=lambda p: (not p.adapter, p.device))
