"""Audits at scale: partitioned sources, a streaming engine and a Ray engine that give the in-memory engine's numbers."""
