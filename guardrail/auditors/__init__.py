"""Auditors: each turns an :class:`AuditContext` into an :class:`AuditResult`."""
