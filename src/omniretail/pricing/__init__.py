"""Pricing: price books, prices, price resolution, promotions, coupons, consistency audit."""
