"""Forge: videos -> camera-compensated 3D traces (TraceForge on a CPU)."""
