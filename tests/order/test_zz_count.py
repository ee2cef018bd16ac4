from sqlalchemy import event
from omniretail.catalog import service as catalog
from omniretail.inventory import service as inventory
from omniretail.pricing import service as pricing
from omniretail.pricing.service import PriceInput
from tests.order.helpers import ADDRESS, start_cart, checkout, complete

def test_count(client, shop, session):
    skus = [f"B-{i}" for i in range(10)]
    catalog.create_product(session, title="Bench", variants=[{"sku": s} for s in skus])
    pricing.upsert_prices(session, "gbp", [PriceInput(s, 1000) for s in skus])
    inventory.record_movement(session, location_id=shop.wh, reason="receipt", lines=[(s, 100) for s in skus])
    session.commit()
    cart_id, token = start_cart(client, shop, [(s, 1) for s in skus])
    r = checkout(client, shop, cart_id, token, {"email": "ada@example.com", "shipping_address": ADDRESS, "delivery": [{"method": "standard"}]})
    stmts = []
    def rec(conn, cursor, statement, *a):
        stmts.append(statement)
    eng = session.get_bind().engine
    event.listen(eng, "before_cursor_execute", rec)
    r = complete(client, shop, cart_id, token, idem="k1")
    event.remove(eng, "before_cursor_execute", rec)
    assert r.status_code == 201
    for s in stmts: print(" ".join(s.split())[:150])
    print(len(stmts))
