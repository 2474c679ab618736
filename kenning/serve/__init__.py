"""``kenning serve``: one index behind an HTTP API, a web page, OpenAI-compatible routes and an
MCP server, all thin adapters over the same library calls as the CLI.

``app.create_app`` builds the application; ``service.Service`` is what every route calls;
``pool.IndexPool`` makes concurrent requests safe; ``security`` says who may connect;
``errors`` maps kenning's exceptions to status codes; ``server`` runs it.
"""
