"""The price rule and the split of a chunk's charge: bounded, non-decreasing in the load, exact to the unit."""

from __future__ import annotations

import random

import pytest

from bmoe.ledger.pricing import BASIS, Pricing, PricingError, price_per_token, split_charge, utilisation_bp


def _pricings() -> list[Pricing]:
    rng = random.Random(7)
    made = [Pricing(), Pricing(base=1, floor=1, cap=1, capacity=1), Pricing(base=10**6, floor=3, cap=10**9)]
    for _ in range(20):
        floor = rng.randint(1, 500)
        made.append(Pricing(base=rng.randint(0, 1000), floor=floor, cap=rng.randint(floor, 2000),
                            capacity=rng.randint(1, 64), validator_bp=rng.randint(0, BASIS)))
    return made


@pytest.mark.parametrize("pricing", _pricings())
def test_the_price_stays_within_floor_and_cap_and_never_falls_as_the_load_rises(pricing: Pricing) -> None:
    prices = [price_per_token(pricing, active) for active in range(0, 2 * pricing.capacity + 2)]
    assert all(pricing.floor <= price <= pricing.cap for price in prices)
    assert prices == sorted(prices)


def test_the_price_is_the_stated_formula_between_the_bounds() -> None:
    pricing = Pricing(base=1000, floor=1, cap=10**6, capacity=8)
    for active in range(9):
        u = active / 8
        assert price_per_token(pricing, active) == pytest.approx(1000 * (0.5 + 2 * u * u), abs=1)
    assert price_per_token(pricing, 0) < price_per_token(pricing, 4) < price_per_token(pricing, 8)


def test_the_load_is_capped_at_a_full_batch() -> None:
    assert utilisation_bp(3, 4) == 3 * BASIS // 4
    assert utilisation_bp(9, 4) == BASIS


@pytest.mark.parametrize("seed", range(10))
def test_the_split_adds_up_to_the_charge_and_follows_the_calls_served(seed: int) -> None:
    rng = random.Random(seed)
    pricing = Pricing(validator_bp=rng.randint(0, BASIS))
    served = {f"{edge:064x}": rng.randint(0, 40) for edge in range(rng.randint(0, 6))}
    charge = rng.randint(0, 10**7)
    credits, validator = split_charge(pricing, charge, served)
    assert sum(credits.values()) + validator == charge
    assert set(credits) == {edge for edge, calls in served.items() if calls > 0}
    assert validator >= charge * pricing.validator_bp // BASIS
    ranked = sorted(credits, key=lambda edge: served[edge])
    assert [credits[edge] for edge in ranked] == sorted(credits.values())


@pytest.mark.parametrize("changes", [{"floor": 0}, {"floor": 9, "cap": 8}, {"capacity": 0}, {"validator_bp": BASIS + 1},
                                     {"base": -1}, {"cap": True}])
def test_settings_that_cannot_hold_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(PricingError):
        Pricing(**changes)  # type: ignore[arg-type]
