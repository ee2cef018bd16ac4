"""Customer 360: profiles, identity graph, tracking API (CDP), consent, GDPR, encrypted PII."""
