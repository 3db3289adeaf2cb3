"""
Compatibility endpoints for the seed servers' chat clients (docs/migration.md): each a codec
(realtime.codec) onto the native handlers, plus ``compat.*`` handlers where a seed frame is no
native one. Routed by chat/routing.py.
"""
