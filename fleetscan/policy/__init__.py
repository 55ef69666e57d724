"""Security policy: the YAML policy language, its loader, and the pure engine.

The CLI uses exactly this API::

    policy = load_policies(["baseline", "site.yaml"])  # built-in names or files; ConfigError
    findings = evaluate(policy, scans, now=datetime.now(UTC))
    builtin_policy_path("baseline")  # the shipped policies/baseline.yaml
    builtin_policies()  # name, file, description and rule ids of each shipped policy
"""

from __future__ import annotations

from fleetscan.policy.builtin import (
    BuiltinPolicy,
    builtin_policies,
    builtin_policy_names,
    builtin_policy_path,
    resolve_policy,
)
from fleetscan.policy.engine import evaluate
from fleetscan.policy.loader import load_policies, parse_policy_text
from fleetscan.policy.schema import (
    SCAN_INCOMPLETE,
    UNDOCUMENTED,
    WAIVER_EXPIRED,
    Policy,
    PolicyFile,
)

__all__ = [
    "SCAN_INCOMPLETE",
    "UNDOCUMENTED",
    "WAIVER_EXPIRED",
    "BuiltinPolicy",
    "Policy",
    "PolicyFile",
    "builtin_policies",
    "builtin_policy_names",
    "builtin_policy_path",
    "evaluate",
    "load_policies",
    "parse_policy_text",
    "resolve_policy",
]
