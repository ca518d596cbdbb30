"""Prime factorisation by FLINT (python-flint's `fmpz.factor`), within a time budget.

FLINT factors seed 002's 42-digit example in about 0.04 s (sympy needs about
4 s) and a balanced 60-digit semiprime in about 2 s, where sympy would run
past any budget; `bench/factoring.py` reports the largest balanced semiprime
it factors within the budget here.
"""
from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

import flint

# FLINT finishes any number this small in milliseconds (a balanced 99-bit semiprime: about 7 ms), so such
# numbers (every paced job's) are factored in-process; a larger one is factored in a child the budget can kill.
IN_PROCESS_BITS = 100


class BudgetExceeded(Exception):
    """The number could not be factored within its budget. Retrying would not help."""

    permanent = True

    def __init__(self, budget_s: float):
        super().__init__(f"budget exceeded: not factored within {budget_s:g} s")


def prime_factors(number: int) -> list[int]:
    """The prime factors of `number` in ascending order, with multiplicity."""
    if number < 2:
        raise ValueError(f"{number} has no prime factorisation")
    return sorted(int(prime) for prime, power in flint.fmpz(number).factor() for _ in range(power))


def _factor_into(number: int, pipe: Connection) -> None:
    pipe.send(prime_factors(number))
    pipe.close()


def prime_factors_within(number: int, budget_s: float) -> list[int]:
    """`prime_factors`, but a number FLINT cannot finish in `budget_s` raises BudgetExceeded.

    A large number is factored in a forked child that is killed at the
    deadline, so a hard number never hangs the worker. (A pipe, not a
    multiprocessing.Queue: Lambda has no /dev/shm.)
    """
    if number.bit_length() <= IN_PROCESS_BITS:
        return prime_factors(number)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_factor_into, args=(number, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(budget_s):
            raise BudgetExceeded(budget_s)
        factors: list[int] = receiver.recv()
        return factors
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
