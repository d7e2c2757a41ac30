"""The command-line interface of DESIGN.md section 8 (no Qt; the `gui` command imports it lazily)."""
