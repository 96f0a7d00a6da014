"""Kubernetes resource quantities: "500m" / "2" CPUs, "512Mi" / "4G" memory."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Kubernetes: "no quantity may represent a number greater than 2^63-1 in magnitude, nor may it have more
# than 3 decimal places" (k8s.io/apimachinery resource.Quantity). CPU is counted in millicores here.
K8S_MAX = 2**63 - 1
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)?$")
_FACTORS = {None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def cpu_millicores(q: str | int | float) -> int:
    """'500m' -> 500, '2' -> 2000, 0.5 -> 500. ValueError names the accepted forms."""
    m = _CPU.match(str(q).strip())
    if not m:
        raise ValueError(f"'{q}' is not a CPU quantity (use cores like 2 or 0.5, or millicores like 500m)")
    value = Decimal(m.group(1))
    milli = value if m.group(3) else value * 1000
    if milli != milli.to_integral_value() or milli <= 0:
        raise ValueError(f"'{q}' must be a positive whole number of millicores")
    if milli > K8S_MAX:
        raise ValueError(f"'{_short(q)}' is more than Kubernetes accepts (at most 2^63-1 millicores)")
    return int(milli)


def memory_bytes(q: str | int) -> int:
    """'512Mi' -> 536870912, '4G' -> 4000000000. ValueError names the accepted units."""
    m = _MEM.match(str(q).strip())
    if not m:
        raise ValueError(f"'{q}' is not a memory quantity (use e.g. 512Mi, 4Gi, 2G; units Ki Mi Gi Ti or k M G T)")
    try:
        value = Decimal(m.group(1)) * _FACTORS[m.group(3)]
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"'{q}' is not a number") from None
    if value <= 0:
        raise ValueError(f"'{q}' must be positive")
    if value > K8S_MAX:
        raise ValueError(f"'{_short(q)}' is more than Kubernetes accepts (at most 2^63-1 bytes, 8Ei)")
    return int(value)


def _short(q) -> str:
    s = str(q)
    return s if len(s) <= 40 else f"{s[:20]}...({len(s)} characters)"
