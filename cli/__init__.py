"""The command-line interface of docs/design.md section 8 (no Qt; `gui` imports it lazily)."""
