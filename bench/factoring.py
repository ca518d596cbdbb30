"""The factoring engine: seed 002's 42-digit example, and the largest balanced semiprime factored within the budget.

Balanced semiprimes (two primes of half the digits each) are the hard case.
The sizes grow by two digits until one is not factored within the budget
(PACER_COMPUTE_BUDGET_S, 10 s); each runs through `prime_factors_within`, as
the worker runs it.
"""
from __future__ import annotations

import argparse
import random
import time
from typing import Any

from sympy import nextprime

from chalicelib.compute.factoring import BudgetExceeded, prime_factors_within
from chalicelib.settings import Settings

SEED_EXAMPLE = 100000000000000000050700000000000000004563


def timed(number: int, budget_s: float) -> float | None:
    started = time.perf_counter()
    try:
        prime_factors_within(number, budget_s)
    except BudgetExceeded:
        return None
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-digits", type=int, default=40)
    parser.add_argument("--budget", type=float, default=Settings().compute_budget_s)
    args = parser.parse_args(argv)
    rng = random.Random(2)
    seed_s = timed(SEED_EXAMPLE, args.budget)
    print(f"factoring: seed 002's 42-digit example in {seed_s:.3f} s" if seed_s else "factoring: seed example over budget")
    largest: tuple[int, float] | None = None
    digits = args.from_digits
    while True:
        half = digits // 2
        number = nextprime(rng.randrange(10 ** (half - 1), 10**half)) * nextprime(rng.randrange(10 ** (half - 1), 10**half))
        took = timed(number, args.budget)
        print(f"factoring: balanced semiprime of {len(str(number))} digits: "
              + (f"{took:.2f} s" if took is not None else f"over the {args.budget:g} s budget"), flush=True)
        if took is None:
            break
        largest = (len(str(number)), took)
        digits += 2
    result = {"seed_example_s": round(seed_s, 3) if seed_s else None, "budget_s": args.budget,
              "largest_digits": largest[0] if largest else None, "largest_s": round(largest[1], 2) if largest else None}
    print(f"factoring: largest balanced semiprime within {args.budget:g} s: {result['largest_digits']} digits "
          f"({result['largest_s']} s)")
    return result


if __name__ == "__main__":
    main()
