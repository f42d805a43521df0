"""Base-2 exponent constants of the Triton kernels, named once: exp(x) = 2^(x·log2 e), ln(x) = log2(x)·ln 2.

``LOG2E`` and ``LN2`` are host floats; ``LOG2E_C`` and ``LN2_C`` the same values as ``tl.constexpr``, which a
``@triton.jit`` kernel may read as globals."""

import triton.language as tl

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
LOG2E_C = tl.constexpr(LOG2E)
LN2_C = tl.constexpr(LN2)
