"""Catalog: products, variants, options, categories, attributes, media and sales channels."""
