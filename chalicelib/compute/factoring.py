"""Prime factorisation, by sympy (which uses gmpy2 when it is installed), within a time budget."""
from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from sympy import factorint, isprime

# Trial division up to this bound is quick in-process; a composite cofactor it leaves is done apart.
QUICK_LIMIT = 10**6
# Up to 64 bits sympy's rho finishes in milliseconds, so such numbers (every paced job's) skip the fork.
IN_PROCESS_BITS = 64


class BudgetExceeded(Exception):
    """The number could not be factored within its budget. Retrying would not help."""

    permanent = True

    def __init__(self, budget_s: float):
        super().__init__(f"budget exceeded: not factored within {budget_s:g} s")


def prime_factors(number: int) -> list[int]:
    """The prime factors of `number` in ascending order, with multiplicity."""
    if number < 2:
        raise ValueError(f"{number} has no prime factorisation")
    return _expand(factorint(number))


def _expand(powers: dict[int, int]) -> list[int]:
    return [int(prime) for prime, power in sorted(powers.items()) for _ in range(power)]


def _factor_into(number: int, pipe: Connection) -> None:
    pipe.send(factorint(number))
    pipe.close()


def prime_factors_within(number: int, budget_s: float) -> list[int]:
    """`prime_factors`, but a number sympy cannot finish in `budget_s` raises BudgetExceeded.

    Trial division runs in-process; a composite cofactor it leaves is factored in a
    forked child that is killed at the deadline, so a hard number never hangs
    the worker. (A pipe, not a multiprocessing.Queue: Lambda has no /dev/shm.)
    """
    if number.bit_length() <= IN_PROCESS_BITS:
        return prime_factors(number)
    quick = factorint(number, limit=QUICK_LIMIT, use_rho=False, use_pm1=False, use_ecm=False)
    hard = [f for f in quick if not isprime(f)]
    if not hard:
        return _expand(quick)
    powers = {f: p for f, p in quick.items() if f not in hard}
    context = multiprocessing.get_context("fork")
    for cofactor in hard:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_factor_into, args=(cofactor, sender), daemon=True)
        child.start()
        sender.close()
        try:
            if not receiver.poll(budget_s):
                raise BudgetExceeded(budget_s)
            for prime, power in receiver.recv().items():
                powers[prime] = powers.get(prime, 0) + power * quick[cofactor]
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            receiver.close()
    return _expand(powers)
