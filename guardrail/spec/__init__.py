"""Audit spec and policy file formats, their loading and validation."""
