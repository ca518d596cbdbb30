"""Prime factorisation, by sympy (which uses gmpy2 when it is installed)."""
from __future__ import annotations

from sympy import factorint


def prime_factors(number: int) -> list[int]:
    """The prime factors of `number` in ascending order, with multiplicity."""
    if number < 2:
        raise ValueError(f"{number} has no prime factorisation")
    return [prime for prime, power in sorted(factorint(number).items()) for _ in range(power)]
