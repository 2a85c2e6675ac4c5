"""``cryoscape dashboard``: a local web app to explore a trained run.

:mod:`.state` loads the run (latents, embeddings, colour columns, particle images, the model on
demand), :mod:`.api` answers the page's JSON requests, :mod:`.server` serves both on localhost
with the standard library's HTTP server, and ``static/`` holds the page. Nothing here is
imported by the rest of cryoscape.
"""
