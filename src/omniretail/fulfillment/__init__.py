"""Fulfilment: order sourcing (DOM), delivery promise, store tasks, shipments."""
