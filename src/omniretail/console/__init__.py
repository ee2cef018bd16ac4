"""Back-office web console and store-associate view: a small SPA served by the API process."""
