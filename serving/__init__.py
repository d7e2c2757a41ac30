"""The inference server (docs/design.md section 13): the registry's live versions over HTTP.

``serving.app.create_app`` builds the ASGI app; ``serving.live.LiveRegistry`` watches the
registry and swaps models atomically; ``serving.batching`` groups concurrent image requests.
No Qt here (tests/test_layering.py); torch is imported by the modules that run models.
"""
