"""Inventory: locations, stock ledger, reservations, available-to-promise, transfers."""
