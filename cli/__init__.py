"""The command-line interface of DESIGN.md section 8 (no Qt; `gui` imports it lazily)."""
