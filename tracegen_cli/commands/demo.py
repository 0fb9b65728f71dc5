"""`tracegen demo`: the whole method in simulation (the body is in `tracegen_cli.demo_command`)."""

from tracegen_cli.demo_command import register

__all__ = ["register"]
