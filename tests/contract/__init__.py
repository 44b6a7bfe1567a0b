"""Contract: the real client and engine against a strict fake of PPS-API.md."""
