"""Orders: carts, checkout, payments, order lifecycle, returns and exchanges, store POS."""
