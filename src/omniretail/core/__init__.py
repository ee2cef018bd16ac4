"""Shared kernel: config, database, errors, money, ids, time, events, auth, pagination."""
