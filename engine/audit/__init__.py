"""Image erasure audits (docs/design.md section 5).

Pure functions over score arrays (``scores``, ``roc``, ``attacks``) and the torch /
registry parts that feed them (``outputs``, ``probe``, ``relearn``, ``reference``,
``lira``, ``measure``); ``engine.audit.job.audit_job`` runs them all against the
registry and records an AuditRun. torch is only imported by the modules that need it.
"""
