"""A container rehearsal of the Astro path (``astro dev pytest``/``parse``/``start``) on Podman.

Run it with ``make astro-rehearsal``; see ``__main__.py`` for what it does and proves.
"""
