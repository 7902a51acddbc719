"""Core result types, enums and JSON round-trip. Standard library only."""
