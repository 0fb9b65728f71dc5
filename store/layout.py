"""Names of the store layout (DESIGN.md section 4), shared by the store's reader, writer and verify."""

import re

VIDEOS = "videos"  # <store>/videos/<sha256>/
FORGE = "forge"  # <store>/videos/<sha256>/forge/<config-hash>/
STAGING = "_staging"  # <store>/_staging/<...>/: writes in progress on local stores
STORE_FORMAT = "tracegen-trace-store"  # root attrs["format"]
KEY_PATTERN = re.compile(r"[0-9a-f]{8,64}")  # video keys: SHA-256 hex (shorter only in tests)
CONFIG_PATTERN = re.compile(r"[0-9a-f]{4,64}")  # forge config hashes: hex
