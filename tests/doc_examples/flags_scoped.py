"""Feature flags in code: declare, check, and scope them."""

from hookline import flags

flags.define("checkout.new_tax_rules", default=False, description="The 2026 tax rules.")
flags.define("checkout.express", rollout=0.3, description="Express checkout for 30 %.")


def tax(amount: float) -> float:
    rate = 0.25 if flags.is_enabled("checkout.new_tax_rules") else 0.20
    return round(amount * rate, 2)


print(tax(100))
with flags.enabled("checkout.new_tax_rules"):  # on inside, in this thread or task only
    print(tax(100))
print(tax(100))  # off again, even if the block had raised


@flags.enabled("checkout.new_tax_rules")  # the same scope, as a decorator
def quote_with_new_rules(amount: float) -> float:
    return tax(amount)


print(quote_with_new_rules(100))

# A rollout share is decided per event, by a stable hash of its user_id.
users = [{"user_id": f"u{n}"} for n in range(1000)]
print(sum(flags.is_enabled("checkout.express", user) for user in users))
