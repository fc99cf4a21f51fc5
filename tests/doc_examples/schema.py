"""An event schema of your own: every field is checked on construction and on assignment."""

import hookline
from hookline import fields


# --8<-- [start:schema]
class Address(hookline.Event):
    city = fields.String(min_length=1)
    country = fields.String(pattern="[A-Z]{2}")


class Purchase(hookline.Event):
    order_id = fields.String(min_length=1, max_length=64)
    amount = fields.Number(minimum=0)
    quantity = fields.Integer(minimum=1, default=1)
    currency = fields.Choice(["EUR", "USD"], default="EUR")
    paid_at = fields.Timestamp(iso=True)
    gift = fields.Boolean(default=False)
    tags = fields.List(fields.String(min_length=1), default=list)
    ship_to = fields.Nested(Address, optional=True)
    extra = fields.Mapping(values=fields.String(), default=dict)
# --8<-- [end:schema]


# --8<-- [start:use]
order = Purchase.from_dict(
    {"order_id": "o-1", "amount": 12.5, "paid_at": "2026-01-01T00:00:00Z",
     "ship_to": {"city": "Oslo", "country": "NO"}}
)
print(order.paid_at, order.quantity, order.ship_to.city)

order.quantity = 3  # validated
try:
    order.quantity = 0
except hookline.ValidationError as error:
    print(error)

try:
    Purchase.from_dict(
        {"order_id": "", "amount": -1, "paid_at": 0, "gift": 1, "tags": ["a", ""], "coupon": "X"}
    )
except hookline.ValidationError as error:
    print(error)
    for problem in error.errors:
        print(f"  {problem.path}: {problem.message} (got {problem.value!r})")
# --8<-- [end:use]
