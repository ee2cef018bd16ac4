"""Demo retailer and seeded data generators (no real data is shipped in the repository)."""
