"""
Compatibility endpoints for the seed servers whose clients speak rooms (docs/migration.md): seed
003's Socket.IO game framework (``seed003``).
"""
